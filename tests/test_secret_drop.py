"""SECRET drops (kadchat.deaddrop, kadchat.mailbox): our presence secret for a contact
without a session, in the pair's dead drop; on a Clock and a dict DHT."""

import pytest
from nacl.signing import SigningKey
from twisted.internet.task import Clock

from kadchat.deaddrop import ACK_SEQ, DATA_SEQ, DropError, Pair, Receipt, SecretDrop, secret_id
from kadchat.dropstore import DropStore
from kadchat.history import History
from kadchat.mailbox import GLANCE_DELAY, Mailbox
from kadchat.messaging import ChatEndpoint
from kadchat.presencesecret import PresenceSecrets
from kadchat.tracker import PresenceTracker
from tests.test_deaddrop import ALICE, B, BOB, MALLORY, A, P, fragment
from tests.test_presence_secrets_flow import HOME, published
from tests.test_presence import ALICE as ALICE_ID, DictDHT

T0 = 1_700_000_000.0
SECRET = SecretDrop(b"s" * 32, 1_699_000_000_000_000)


def test_a_secret_drop_is_as_big_as_any_drop_and_only_the_recipient_opens_it():
    item = Pair(ALICE, B).outgoing(P).secret(SECRET)
    data = Pair(ALICE, B).outgoing(P).data(fragment())
    assert item.seq == DATA_SEQ and item.verify() and len(item.encoded_v) == len(data.encoded_v)
    assert Pair(BOB, A).incoming(P).open(item) == SECRET
    with pytest.raises(DropError):
        Pair(MALLORY, A).incoming(P).open(item)  # a stranger's key computes another position
    ack = Pair(BOB, A).incoming(P).ack(Receipt(secret_id(SECRET.secret), 0, 1))
    assert ack.seq == ACK_SEQ and Pair(ALICE, B).outgoing(P).open(ack).message_id == secret_id(SECRET.secret)


class Side:
    """One user with real presence secrets and drop file; `connected` stands for a session."""

    def __init__(self, tmp_path, name, seed, contact_key, clock, dht):
        self.tmp_path, self.name, self.contact_key, self.clock, self.dht = tmp_path, name, contact_key, clock, dht
        self.key = SigningKey(bytes([seed]) * 32)
        self.public_key = bytes(self.key.verify_key)
        self.secrets = PresenceSecrets(str(tmp_path / f"{name}-secrets.json"), now=clock.seconds)
        self.secrets.load()
        self.history = History(tmp_path / f"{name}.sqlite3")
        self.connected = False
        self.got = []  # the SecretDrops the reader handed on
        self.open_mailbox()

    def open_mailbox(self):
        self.store = DropStore(self.tmp_path / f"{self.name}-drops.sqlite3")
        self.mailbox = Mailbox(self.clock, self.dht, self.key, lambda: [self.contact_key], self.store, self.history,
                               lambda peer: self.connected, lambda *a: None, lambda *a: None,
                               secrets=self.secrets, secret_received=self.secret_received)

    def secret_received(self, peer, drop):
        self.got.append(drop)
        self.secrets.received(peer, drop.secret, drop.made_us)

    def restart(self):
        self.mailbox.stop()
        self.store.close()
        self.open_mailbox()


@pytest.fixture
def pair(tmp_path):
    clock = Clock()
    clock.advance(T0)
    dht = DictDHT(clock)
    a = Side(tmp_path, "a", 1, B, clock, dht)
    b = Side(tmp_path, "b", 2, A, clock, dht)
    return clock, dht, a, b


def held_at(dht, side, drop):
    return dht.held(Pair(side.key, side.contact_key).outgoing(drop.position).target)


def test_the_writer_puts_one_secret_drop_and_stops_after_the_ack(pair):
    clock, dht, a, b = pair
    a.mailbox.writer.write(b.public_key)
    a.mailbox.writer.write(b.public_key)
    [drop] = a.store.drops()
    assert drop.secret and drop.last_put is not None and dht.puts == 1
    b.mailbox.reader.read(a.public_key)
    assert b.secrets.of(a.public_key) == a.secrets.own
    a.mailbox.writer.write(b.public_key)
    assert a.store.drops() == [] and a.secrets.holds_ours(b.public_key)
    puts = dht.puts
    a.mailbox.writer.write(b.public_key)
    assert a.store.drops() == [] and dht.puts == puts
    assert b.public_key not in a.mailbox.writer.peers([b.public_key])


def test_the_reader_hands_the_secret_on_once_and_acknowledges_it(pair):
    clock, dht, a, b = pair
    a.mailbox.writer.write(b.public_key)
    [drop] = a.store.drops()
    b.mailbox.reader.read(a.public_key)
    b.mailbox.reader.read(a.public_key)
    assert b.got == [SecretDrop(a.secrets.own, a.secrets.own_made_us)]
    assert held_at(dht, a, drop).seq == ACK_SEQ


def test_the_intent_survives_a_restart_and_the_drop_is_not_placed_twice(pair):
    clock, dht, a, b = pair
    a.mailbox.writer.write(b.public_key)
    [drop] = a.store.drops()
    a.restart()
    dht.items.clear()  # and the node that held it is gone
    a.mailbox.writer.write(b.public_key)
    assert a.store.drops() == [drop.__class__(**{**drop.__dict__, "last_put": clock.seconds()})]
    assert held_at(dht, a, drop) == drop.item  # the same drop, put again
    b.mailbox.reader.read(a.public_key)
    assert b.secrets.of(a.public_key) == a.secrets.own


def test_a_secret_handed_over_a_session_ends_the_drop(pair):
    clock, dht, a, b = pair
    a.mailbox.writer.write(b.public_key)
    a.connected = True
    a.secrets.handed(b.public_key)
    a.mailbox.writer.write(b.public_key)
    assert a.store.drops() == []


def test_a_rotation_replaces_the_drop_and_the_reader_keeps_the_newest(pair):
    clock, dht, a, b = pair
    a.mailbox.writer.write(b.public_key)
    [old] = a.store.drops()
    clock.advance(60)
    a.secrets.rotate()
    a.mailbox.writer.write(b.public_key)
    [new] = a.store.drops()
    assert new.position == old.position.next() and new.message_id == secret_id(a.secrets.own)
    b.mailbox.reader.read(a.public_key)  # reads both, the older first
    assert b.secrets.of(a.public_key) == a.secrets.own and len(b.got) == 2


def test_a_drop_older_than_the_secret_a_session_brought_is_refused(pair):
    clock, dht, a, b = pair
    a.mailbox.writer.write(b.public_key)
    clock.advance(60)
    a.secrets.rotate()
    b.secrets.received(a.public_key, a.secrets.own)  # over a session, now
    b.mailbox.reader.read(a.public_key)
    assert len(b.got) == 1 and b.secrets.of(a.public_key) == a.secrets.own


def test_a_stored_secret_drop_brings_one_extra_look_at_the_contacts_recent_drops(pair):
    clock, dht, a, b = pair
    a.mailbox.start()  # b has not started: a's first pass finds nothing of b's
    assert a.secrets.of(b.public_key) == b"" and len(a.store.drops()) == 1
    clock.advance(1)
    b.mailbox.writer.write(a.public_key)  # b starts and puts its own
    clock.advance(GLANCE_DELAY)
    assert a.secrets.of(b.public_key) == b.secrets.own  # long before the next pass, 300 s on
    gets = dht.gets
    clock.advance(GLANCE_DELAY)
    assert dht.gets == gets  # once
    a.mailbox.stop()
    b.mailbox.stop()
    assert clock.getDelayedCalls() == []


def test_the_budget_counts_the_secret_drop(pair):
    clock, dht, a, b = pair
    a.mailbox.writer._budget = 1
    endpoint = ChatEndpoint(clock, lambda data, addr: None, a.key, lambda k: True, a.history)
    endpoint.send_message(b.public_key, [], "waits")
    a.mailbox.writer.write(b.public_key)
    assert [d.secret for d in a.store.drops()] == [True]  # the secret first, the message waits
    endpoint.stop()


def test_the_tracker_looks_a_contact_up_at_once_with_a_secret_just_received(tmp_path):
    clock = Clock()
    clock.advance(T0)
    dht = DictDHT(clock)
    publisher, alices = published(tmp_path, clock, dht)
    holds = {"secret": b""}
    tracker = PresenceTracker(clock, dht, [("alice", ALICE_ID.public_key)], secret_of=lambda key: holds["secret"])
    tracker.start()
    assert tracker.presence("alice").addrs == ()  # her request point only
    holds["secret"] = alices.own
    tracker.look_up(ALICE_ID.public_key)
    assert tracker.presence("alice").addrs == HOME.addrs
    tracker.stop()
    publisher.stop()


def test_who_holds_our_secret_is_kept_across_restarts_and_a_rotation_clears_it(tmp_path):
    path = str(tmp_path / "secrets.json")
    secrets = PresenceSecrets(path, now=lambda: T0)
    secrets.load()
    assert secrets.own_made_us == int(T0 * 1e6) and not secrets.holds_ours(B)
    secrets.handed(B)
    again = PresenceSecrets(path)
    again.load()
    assert again.holds_ours(B) and again.own_made_us == secrets.own_made_us
    again.rotate()
    assert not again.holds_ours(B)
