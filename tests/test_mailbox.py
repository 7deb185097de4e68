"""Mailbox (kadchat.mailbox): messages for an offline contact through dead drops, on a Clock and a dict DHT."""

from dataclasses import replace

import pytest
from nacl.signing import SigningKey
from twisted.internet import defer
from twisted.internet.task import Clock

from kadchat.deaddrop import PER_SLOT, RETENTION, SLOT_SECONDS, Position, slot_of
from kadchat.dropstore import DropStore
from kadchat.history import History
from kadchat.mailbox import DHTCalls, Mailbox
from kadchat.messaging import ChatEndpoint
from kadchat.model import MessageState
from tests.test_presence import DictDHT

T0 = 1_700_000_000.0


class Side:
    """One user: history, drop file, endpoint (no sessions ever: the contact is offline) and mailbox."""

    def __init__(self, tmp_path, name, seed, contact_key, clock, dht, **options):
        self.key = SigningKey(bytes([seed]) * 32)
        self.public_key = bytes(self.key.verify_key)
        self.history = History(tmp_path / f"{name}.sqlite3")
        self.store = DropStore(tmp_path / f"{name}-drops.sqlite3")
        self.endpoint = ChatEndpoint(clock, lambda data, addr: None, self.key, lambda k: True, self.history)
        self.received, self.states = [], []
        self.endpoint.subscribe(self)
        self.mailbox = Mailbox(clock, dht, self.key, lambda: [contact_key], self.store, self.history,
                               lambda peer: False, self.endpoint.deliver_stored, self.endpoint.set_state,
                               **options)

    def message_received(self, peer, message):
        self.received.append(message)

    def message_state(self, message_id, state):
        self.states.append((message_id, state))

    def send(self, peer, text):
        return self.endpoint.send_message(peer, [], text)

    def state(self, message_id):
        return self.history.get(message_id).state


@pytest.fixture
def world(tmp_path):
    clock = Clock()
    clock.advance(T0)
    dht = DictDHT(clock)
    a_key, b_key = (bytes(SigningKey(bytes([n]) * 32).verify_key) for n in (1, 2))
    a = Side(tmp_path, "a", 1, b_key, clock, dht)
    b = Side(tmp_path, "b", 2, a_key, clock, dht)
    return clock, dht, a, b


def test_messages_for_an_offline_contact_are_stored_read_in_order_and_acknowledged(world):
    clock, dht, a, b = world
    ids = [a.send(b.public_key, f"message {n}") for n in range(5)]
    a.mailbox.writer.write(b.public_key)
    assert [a.state(i) for i in ids] == [MessageState.STORED] * 5
    assert (ids[0], MessageState.QUEUED) in a.states and (ids[0], MessageState.STORED) in a.states
    clock.advance(3 * 3600)  # b was away for three hours; a has quit
    b.mailbox.reader.read(a.public_key)
    assert [m.text for m in b.received] == [f"message {n}" for n in range(5)]
    assert [m.timestamp for m in b.received] == [T0] * 5  # the original send time
    a.mailbox.writer.write(b.public_key)  # a comes back and looks
    assert [a.state(i) for i in ids] == [MessageState.DELIVERED] * 5
    assert a.history.pending_for(b.public_key) == [] and a.store.drops() == []


def test_a_second_read_shows_nothing_twice(world):
    clock, dht, a, b = world
    a.send(b.public_key, "once")
    a.mailbox.writer.write(b.public_key)
    b.mailbox.reader.read(a.public_key)
    b.mailbox.reader.read(a.public_key)
    assert [m.text for m in b.received] == ["once"]


def test_a_message_already_delivered_directly_is_acknowledged_not_shown_again(world):
    clock, dht, a, b = world
    message_id = a.send(b.public_key, "twice?")
    a.mailbox.writer.write(b.public_key)
    sent = a.history.get(message_id)  # as if it came over a session
    b.endpoint.deliver_stored(a.public_key, replace(sent, peer=a.public_key, outgoing=False), 1)
    b.mailbox.reader.read(a.public_key)
    assert [m.text for m in b.received] == ["twice?"]
    a.mailbox.writer.write(b.public_key)
    assert a.state(message_id) == MessageState.DELIVERED


def test_a_long_message_chains_across_positions_and_slots(world):
    clock, dht, a, b = world
    text = "\u00e9" * 4000  # 8,000 bytes: ten drops
    clock.advance((slot_of(clock.seconds()) + 1) * SLOT_SECONDS - clock.seconds() - 1)  # a slot's last second
    for n in range(PER_SLOT - 3):  # nearly fill the slot first
        a.send(b.public_key, f"short {n}")
    a.mailbox.writer.write(b.public_key)
    a.send(b.public_key, text)
    a.mailbox.writer.write(b.public_key)
    slots = {d.position.slot for d in a.store.drops()}
    assert len(slots) == 2
    clock.advance(10)
    b.mailbox.reader.read(a.public_key)
    assert b.received[-1].text == text and len(b.received) == PER_SLOT - 2


def test_the_reader_reads_no_slot_twice_once_it_is_past(world):
    clock, dht, a, b = world
    b.mailbox.reader.read(a.public_key)  # an empty mailbox: the whole retention, two gets per slot
    first = dht.gets
    assert first == 2 * (RETENTION // SLOT_SECONDS + 2)
    clock.advance(SLOT_SECONDS)
    b.mailbox.reader.read(a.public_key)
    assert dht.gets - first == 2 * 4  # from the slot before the last pass's to the next one


def test_drops_older_than_the_retention_are_not_shown_and_the_sender_takes_them_back(world):
    clock, dht, a, b = world
    message_id = a.send(b.public_key, "too late")
    a.mailbox.writer.write(b.public_key)
    dht.items = {t: (item, float("inf")) for t, (item, _) in dht.items.items()}  # a node that keeps everything
    clock.advance(RETENTION + SLOT_SECONDS)
    b.mailbox.reader.read(a.public_key)
    assert b.received == []
    a.mailbox.writer.write(b.public_key)
    assert a.state(message_id) == MessageState.QUEUED and a.store.drops() == []


def test_the_sender_republishes_a_drop_a_node_lost(world):
    clock, dht, a, b = world
    a.send(b.public_key, "again")
    a.mailbox.writer.write(b.public_key)
    dht.items.clear()
    a.mailbox.writer.write(b.public_key)
    b.mailbox.reader.read(a.public_key)
    assert [m.text for m in b.received] == ["again"]


def test_a_budget_bounds_the_drops_per_contact_and_the_rest_waits_in_order(tmp_path):
    clock = Clock()
    clock.advance(T0)
    dht = DictDHT(clock)
    b = Side(tmp_path, "b", 2, bytes(SigningKey(bytes([1]) * 32).verify_key), clock, dht)
    a = Side(tmp_path, "a", 1, b.public_key, clock, dht, budget=3)
    ids = [a.send(b.public_key, f"m{n}") for n in range(5)]
    a.mailbox.writer.write(b.public_key)
    assert len(a.store.drops()) == 3 and a.state(ids[3]) == MessageState.SENDING
    b.mailbox.reader.read(a.public_key)
    a.mailbox.writer.write(b.public_key)  # receipts free the budget: the rest goes
    b.mailbox.reader.read(a.public_key)
    assert [m.text for m in b.received] == [f"m{n}" for n in range(5)]


def test_new_messages_never_start_past_the_next_slot(world):
    clock, dht, a, b = world
    for n in range(3 * PER_SLOT):
        a.send(b.public_key, f"m{n}")
    a.mailbox.writer.write(b.public_key)
    now = slot_of(clock.seconds())
    assert max(d.position for d in a.store.drops()) < Position(now + 2, 0)
    assert len(a.store.drops()) <= 2 * PER_SLOT


def test_stored_stays_stored_when_the_direct_attempt_gives_up(world):
    clock, dht, a, b = world
    message_id = a.send(b.public_key, "patience")
    a.mailbox.writer.write(b.public_key)
    clock.advance(600)  # the endpoint gives up on the direct path after 120 s
    assert a.state(message_id) == MessageState.STORED


def test_the_mailbox_loop_stops_cleanly(world):
    clock, dht, a, b = world
    a.mailbox.start()
    b.mailbox.start()
    clock.advance(1)
    a.mailbox.stop()
    b.mailbox.stop()
    a.endpoint.stop()
    b.endpoint.stop()
    assert clock.getDelayedCalls() == []


def test_a_slot_whose_lookup_failed_is_read_again_next_pass(world):
    clock, dht, a, b = world
    a.send(b.public_key, "patient")
    a.mailbox.writer.write(b.public_key)
    clock.advance(5 * SLOT_SECONDS)
    working = dht.get
    dht.get = lambda target, salt=b"": defer.fail(RuntimeError("network down"))
    b.mailbox.reader.read(a.public_key)
    assert b.received == []
    dht.get = working
    b.mailbox.reader.read(a.public_key)
    assert [m.text for m in b.received] == ["patient"]


def test_stop_waits_for_a_pass_in_flight_then_cancels_it(tmp_path):
    from tests.test_presence import HangingDHT
    clock = Clock()
    clock.advance(T0)
    side = Side(tmp_path, "a", 1, bytes(SigningKey(bytes([2]) * 32).verify_key), clock, HangingDHT())
    side.mailbox.start()
    stopped = side.mailbox.stop(grace=5.0)
    assert not stopped.called
    clock.advance(5.0)
    assert stopped.called
    side.endpoint.stop()
    assert clock.getDelayedCalls() == []


def test_paced_calls_start_at_most_rate_a_second():
    clock = Clock()
    dht = DictDHT(clock)
    calls = DHTCalls(clock, dht, rate=2.0)
    results = [calls.get(bytes(20)) for _ in range(4)]
    assert [d.called for d in results] == [True, False, False, False]
    clock.advance(0.5)
    assert [d.called for d in results] == [True, True, False, False]
    clock.advance(1.0)
    assert all(d.called for d in results) and dht.gets == 4
    assert clock.getDelayedCalls() == []


def test_send_soon_waits_a_moment_for_a_session_then_places_the_drops(world):
    clock, dht, a, b = world
    message_id = a.send(b.public_key, "soon")
    a.mailbox.send_soon(b.public_key)
    a.mailbox.send_soon(b.public_key)  # one write for both calls
    assert a.store.drops() == []
    clock.advance(5.0)
    assert a.state(message_id) == MessageState.STORED and dht.puts == 1
    a.mailbox.send_soon(b.public_key)
    a.mailbox.stop()
    a.endpoint.stop()
    assert clock.getDelayedCalls() == []


def test_a_contact_away_for_48_hours_still_gets_the_message(world):
    clock, dht, a, b = world
    a.send(b.public_key, "two days")
    a.mailbox.writer.write(b.public_key)
    clock.advance(48 * 3600 + 120)
    b.mailbox.reader.read(a.public_key)
    assert [m.text for m in b.received] == ["two days"]


class WithholdingDHT(DictDHT):
    """A storage node past our value budget every other time: it answers such a get
    as if it held nothing (kademlia.reflection withholds the value)."""

    def __init__(self, clock):
        super().__init__(clock)
        self.withheld = 0

    def get(self, target, salt=b""):
        self.gets += 1
        if self.held(target) is not None and self.gets % 2:
            self.withheld += 1
            return defer.succeed(None)
        return defer.succeed(self.held(target))


def test_a_withheld_value_is_not_taken_for_an_empty_drop(tmp_path):
    clock = Clock()
    clock.advance(T0)
    dht = WithholdingDHT(clock)
    a_key, b_key = (bytes(SigningKey(bytes([n]) * 32).verify_key) for n in (1, 2))
    a, b = Side(tmp_path, "a", 1, b_key, clock, dht), Side(tmp_path, "b", 2, a_key, clock, dht)
    for n in range(5):
        a.send(b.public_key, f"message {n}")
    a.mailbox.writer.write(b.public_key)
    clock.advance(3600)
    b.mailbox.reader.read(a.public_key)
    assert dht.withheld  # some of the reads met a withholding node
    assert [m.text for m in b.received] == [f"message {n}" for n in range(5)]


def test_stop_ends_a_first_pass_over_many_contacts_whose_reads_wait_their_turn(tmp_path):
    # Cancelled, every waiting slot read ends at once: ended in one synchronous cascade
    # through the reader's semaphore, they overflowed the stack and the pass never ended
    # (seen: a /quit that did not exit, 20 contacts).
    from tests.test_presence import HangingDHT
    clock = Clock()
    clock.advance(T0)
    side = Side(tmp_path, "a", 1, bytes(SigningKey(bytes([2]) * 32).verify_key), clock, HangingDHT())
    side.mailbox._contacts = lambda: [bytes(SigningKey(bytes([3 + i]) * 32).verify_key) for i in range(20)]
    side.mailbox.start()
    stopped = side.mailbox.stop(grace=5.0)
    clock.advance(5.0)
    assert stopped.called
    side.endpoint.stop()
    assert clock.getDelayedCalls() == []
