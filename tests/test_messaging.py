"""kadchat.messaging: reliable, ordered, end-to-end sealed chat messages."""

import pytest
from nacl.signing import SigningKey
from twisted.internet.task import Clock

from kadchat import wire
from kadchat.channel import Limits
from kadchat.errors import UserError
from kadchat.history import History
from kadchat.messaging import ChatEndpoint, EndpointListener, MessagingConfig
from kadchat.sessions import SessionConfig
from tests.chat_network import LossyNetwork

ALICE, BOB, MALLORY = (SigningKey(bytes([c]) * 32) for c in b"abm")
A_KEY, B_KEY, M_KEY = (bytes(k.verify_key) for k in (ALICE, BOB, MALLORY))
A_ADDR, B_ADDR = ("127.0.0.1", 1001), ("127.0.0.1", 1002)


class Recorder(EndpointListener):
    """A listener remembering what the endpoint reported."""

    def __init__(self):
        self.received = []
        self.states = {}
        self.sessions_ready = []
        self.presences = []

    def message_received(self, peer_key, message):
        self.received.append((peer_key, message))

    def message_state(self, message_id, state):
        self.states.setdefault(message_id, []).append(state)

    def session_ready(self, peer_key):
        self.sessions_ready.append(peer_key)

    def presence_received(self, peer_key, status, their_time):
        self.presences.append((peer_key, status, their_time))

    def texts(self):
        return [m.text for _, m in self.received]


class Side:
    """One endpoint attached to the fake network."""

    def __init__(self, net, identity, addr, contacts, history_path=":memory:", config=MessagingConfig()):
        self.history = History(history_path)
        self.recorder = Recorder()
        self.endpoint = ChatEndpoint(net.clock, lambda data, to: self.send(data, to), identity,
                                     contacts.__contains__, self.history, config)
        self.send = net.attach(addr, self.endpoint.datagram_received)
        self.endpoint.subscribe(self.recorder)


def pair(tmp_path=None, config=MessagingConfig(), **net_args):
    net = LossyNetwork(Clock(), **net_args)
    paths = [tmp_path / n if tmp_path else ":memory:" for n in ("a.sqlite3", "b.sqlite3")]
    alice = Side(net, ALICE, A_ADDR, {B_KEY}, paths[0], config)
    bob = Side(net, BOB, B_ADDR, {A_KEY}, paths[1], config)
    return net, alice, bob


def test_message_is_delivered_with_receipts_in_order_of_progress():
    net, alice, bob = pair()
    message_id = alice.endpoint.send_message(B_KEY, [B_ADDR], "hello bob")
    assert alice.recorder.states[message_id] == ["sending"]
    assert net.run(lambda: "delivered" in alice.recorder.states[message_id], timeout=5)
    assert alice.recorder.states[message_id] == ["sending", "sent", "delivered"]
    [(peer, message)] = bob.recorder.received
    assert (peer, message.id, message.text, message.state, message.outgoing) == (
        A_KEY, message_id, "hello bob", "received", False)
    assert alice.history.pending_for(B_KEY) == []
    assert [m.state for m in bob.history.conversation(A_KEY)] == ["received"]


def test_ten_thousand_messages_through_loss_and_reordering_arrive_once_in_order():
    # Seeded 20% loss each way, 5-60 ms jitter (reorders), rekey every 1000 datagrams.
    config = MessagingConfig(sessions=SessionConfig(limits=Limits(rekey_after_messages=1000)))
    net, alice, bob = pair(config=config, seed=20, loss=0.2, latency=(0.005, 0.060))
    ids = [alice.endpoint.send_message(B_KEY, [B_ADDR], f"message {i}") for i in range(10_000)]
    assert net.run(lambda: len(bob.recorder.received) == 10_000 and not alice.endpoint._outgoing,
                   timeout=600)
    net.run(timeout=1)  # late duplicates must not show anything twice
    assert bob.recorder.texts() == [f"message {i}" for i in range(10_000)]
    assert [m.id for _, m in bob.recorder.received] == ids
    assert all(alice.recorder.states[i][-1] == "delivered" for i in ids)
    assert alice.history.pending_for(B_KEY) == []
    assert alice.endpoint.sessions.handshake_stats.completed >= 10  # it did rekey


def test_both_sides_hear_when_their_session_is_up_and_can_ask_where_it_goes():
    net, alice, bob = pair()
    assert not alice.endpoint.has_session(B_KEY) and alice.endpoint.route_of(B_KEY) is None
    message_id = alice.endpoint.send_message(B_KEY, [B_ADDR], "hello bob")
    assert net.run(lambda: "delivered" in alice.recorder.states[message_id], timeout=5)
    assert alice.recorder.sessions_ready == [B_KEY] and bob.recorder.sessions_ready == [A_KEY]
    assert alice.endpoint.has_session(B_KEY) and alice.endpoint.route_of(B_KEY) == B_ADDR


def test_presence_notes_travel_only_over_a_live_session():
    net, alice, bob = pair()
    assert not alice.endpoint.send_presence(B_KEY, "online", 1000.0)  # no session, nowhere to start one
    alice.endpoint.peer_available(B_KEY, [B_ADDR])
    assert net.run(lambda: alice.endpoint.has_session(B_KEY), timeout=5)
    assert alice.endpoint.send_presence(B_KEY, "away", 1000.5)
    assert net.run(lambda: bob.recorder.presences, timeout=5)
    assert bob.recorder.presences == [(A_KEY, "away", 1000.5)]


def test_a_new_session_sends_an_outbox_that_had_given_up():
    net, alice, bob = pair(config=MessagingConfig(give_up_after=5.0))
    apart = [True]
    net.filters.append(lambda data, src, dst: apart[0])
    message_id = alice.endpoint.send_message(B_KEY, [B_ADDR], "while apart")
    assert net.run(lambda: "failed" in alice.recorder.states[message_id], timeout=60)
    apart[0] = False
    bob.endpoint.send_message(A_KEY, [A_ADDR], "back")  # bob's session to alice: alice's session_ready
    assert net.run(lambda: "delivered" in alice.recorder.states[message_id], timeout=10)


def test_long_text_travels_in_datagrams_under_1200_bytes():
    net, alice, bob = pair(seed=3, loss=0.1, latency=(0.005, 0.03))
    sizes = []
    net.taps.append(lambda data, src, dst: sizes.append(len(data)))
    # the longest text allowed, with multi-byte characters split across chunks
    text = ("žluťoučký kůň " * 5000).encode()[:wire.MAX_TEXT_BYTES].decode(errors="ignore")
    assert len(text.encode()) > wire.MAX_TEXT_BYTES - 4
    alice.endpoint.send_message(B_KEY, [B_ADDR], text)
    assert net.run(lambda: bob.recorder.received, timeout=60)
    assert bob.recorder.texts() == [text]
    assert max(sizes) < 1200


def test_text_size_limits_are_user_errors():
    net, alice, _ = pair()
    with pytest.raises(UserError):
        alice.endpoint.send_message(B_KEY, [B_ADDR], "")
    with pytest.raises(UserError):
        alice.endpoint.send_message(B_KEY, [B_ADDR], "x" * (wire.MAX_TEXT_BYTES + 1))
    assert alice.history.pending_for(B_KEY) == []


def test_third_party_seeing_every_datagram_reads_no_plaintext():
    net, alice, bob = pair(seed=1, loss=0.1)
    traffic = []
    net.taps.append(lambda data, src, dst: traffic.append(data))
    secrets = ["meet at the old mill at noon", "the password is swordfish"]
    for text in secrets:
        alice.endpoint.send_message(B_KEY, [B_ADDR], text)
    bob.endpoint.send_message(A_KEY, [A_ADDR], "reply: understood, swordfish")
    assert net.run(lambda: len(bob.recorder.received) == 2 and alice.recorder.received, timeout=30)
    assert len(traffic) > 8
    for data in traffic:
        for needle in [b"mill", b"swordfish", b"understood", A_KEY, B_KEY]:
            assert needle not in data


def test_tampered_and_replayed_datagrams_are_rejected_counted_and_never_shown():
    net, alice, bob = pair()
    captured = []
    net.taps.append(lambda data, src, dst: src == A_ADDR and data[0] == wire.TRANSPORT
                    and captured.append(data))
    alice.endpoint.send_message(B_KEY, [B_ADDR], "only once")
    assert net.run(lambda: bob.recorder.received, timeout=5)
    net.taps.clear()
    for data in captured:
        net.inject(data, A_ADDR, B_ADDR)  # replay everything
        net.inject(data[:20] + bytes([data[20] ^ 0xFF]) + data[21:], A_ADDR, B_ADDR)  # and tamper
    net.run(timeout=2)
    stats = bob.endpoint.sessions.stats
    assert stats.replayed + stats.tampered == 2 * len(captured)
    assert stats.replayed >= len(captured)
    assert bob.recorder.texts() == ["only once"]


def test_lost_ack_means_a_resend_that_is_acknowledged_but_not_shown_twice():
    net, alice, bob = pair()
    dropped = []

    def drop_first_ack(data, src, dst):
        if src == B_ADDR and data[0] == wire.TRANSPORT and len(data) < 70 and not dropped:
            dropped.append(data)  # the first ack bob sends (the confirm is alice's)
            return True
        return False

    net.filters.append(drop_first_ack)
    message_id = alice.endpoint.send_message(B_KEY, [B_ADDR], "are you there?")
    assert net.run(lambda: "delivered" in alice.recorder.states[message_id], timeout=10)
    assert dropped and bob.recorder.texts() == ["are you there?"]


def test_receiver_killed_mid_conversation_loses_nothing_acknowledged_shows_nothing_twice(tmp_path):
    net, alice, bob = pair(tmp_path, seed=9, loss=0.2, latency=(0.005, 0.05))
    ids = [alice.endpoint.send_message(B_KEY, [B_ADDR], f"line {i}") for i in range(300)]
    assert net.run(lambda: sum("delivered" in s for s in alice.recorder.states.values()) >= 100, timeout=60)
    net.detach(B_ADDR)  # SIGKILL: no goodbye, nothing more is processed
    bob.history.close()
    first_life = list(bob.recorder.received)
    delivered = {i for i, states in alice.recorder.states.items() if "delivered" in states}
    assert 100 <= len(delivered) < 300

    net.run(timeout=5)  # alice keeps retransmitting into the void
    reborn = Side(net, BOB, B_ADDR, {A_KEY}, tmp_path / "b.sqlite3")
    stored = {m.id for m in reborn.history.conversation(A_KEY, limit=1000)}
    held = {m.id for m in reborn.history.incoming_state(A_KEY)[1]}
    assert delivered <= stored | held  # every acknowledged message survived the kill

    assert net.run(lambda: all("delivered" in alice.recorder.states[i] for i in ids), timeout=120)
    shown = [m.id for _, m in first_life + reborn.recorder.received]
    assert shown == ids  # each exactly once, in order, across both lives
    assert reborn.endpoint.sessions.handshake_stats.answered >= 1  # resumed with a new handshake
    assert [m.text for m in reborn.history.conversation(A_KEY, limit=1000)] == [f"line {i}" for i in range(300)]


def test_outbox_survives_sender_restart_and_goes_out_when_presence_shows_up(tmp_path):
    net = LossyNetwork(Clock())
    alice = Side(net, ALICE, A_ADDR, {B_KEY}, tmp_path / "a.sqlite3")
    ids = [alice.endpoint.send_message(B_KEY, [B_ADDR], f"while you were out {i}") for i in range(3)]
    net.run(lambda: all(alice.recorder.states[i][-1] == "failed" for i in ids), timeout=600)
    assert all(alice.recorder.states[i] == ["sending", "failed"] for i in ids)
    alice.history.close()

    alice = Side(net, ALICE, A_ADDR, {B_KEY}, tmp_path / "a.sqlite3")  # restarted
    bob = Side(net, BOB, B_ADDR, {A_KEY}, tmp_path / "b.sqlite3")
    assert [m.id for m in alice.history.pending_for(B_KEY)] == ids
    alice.endpoint.peer_available(B_KEY, [B_ADDR])
    assert net.run(lambda: all(alice.recorder.states[i][-1] == "delivered" for i in ids), timeout=10)
    assert [m.id for _, m in bob.recorder.received] == ids
    assert all(alice.recorder.states[i] == ["sending", "sent", "delivered"] for i in ids)


def test_new_message_to_a_failed_peer_resends_the_older_ones_first():
    net = LossyNetwork(Clock())
    alice = Side(net, ALICE, A_ADDR, {B_KEY})
    old = alice.endpoint.send_message(B_KEY, [B_ADDR], "first")
    net.run(lambda: alice.recorder.states[old][-1] == "failed", timeout=600)
    bob = Side(net, BOB, B_ADDR, {A_KEY})
    new = alice.endpoint.send_message(B_KEY, [B_ADDR], "second")
    assert net.run(lambda: len(bob.recorder.received) == 2, timeout=10)
    assert [m.id for _, m in bob.recorder.received] == [old, new]


def test_retry_sends_a_failed_message_again():
    net = LossyNetwork(Clock())
    alice = Side(net, ALICE, A_ADDR, {B_KEY})
    message_id = alice.endpoint.send_message(B_KEY, [B_ADDR], "knock knock")
    net.run(lambda: alice.recorder.states[message_id][-1] == "failed", timeout=600)
    bob = Side(net, BOB, B_ADDR, {A_KEY})
    alice.endpoint.retry(message_id)
    assert net.run(lambda: alice.recorder.states[message_id][-1] == "delivered", timeout=10)
    assert bob.recorder.texts() == ["knock knock"]
    assert alice.recorder.states[message_id][-3:] == ["sending", "sent", "delivered"]


def test_both_sides_talking_at_once_each_see_the_other_in_order():
    net, alice, bob = pair(seed=5, loss=0.2, latency=(0.005, 0.05))
    for i in range(50):
        alice.endpoint.send_message(B_KEY, [B_ADDR], f"a{i}")
        bob.endpoint.send_message(A_KEY, [A_ADDR], f"b{i}")
    assert net.run(lambda: len(alice.recorder.received) == 50 == len(bob.recorder.received), timeout=60)
    assert bob.recorder.texts() == [f"a{i}" for i in range(50)]
    assert alice.recorder.texts() == [f"b{i}" for i in range(50)]


def test_stranger_cannot_deliver_anything():
    net = LossyNetwork(Clock())
    mallory = Side(net, MALLORY, A_ADDR, {B_KEY})
    bob = Side(net, BOB, B_ADDR, {A_KEY})
    message_id = mallory.endpoint.send_message(B_KEY, [B_ADDR], "buy my stuff")
    net.run(lambda: mallory.recorder.states[message_id][-1] == "failed", timeout=600)
    assert bob.recorder.received == [] and bob.history.conversation(M_KEY) == []
    assert bob.endpoint.sessions.handshake_stats.strangers > 0


def test_held_message_survives_restart_and_is_shown_when_the_gap_fills(tmp_path):
    net, alice, bob = pair(tmp_path)
    first_fragments = []

    def hold_back_message_one(data, src, dst):
        # drop alice's first data datagrams (message 1) for the first 3 seconds
        if src == A_ADDR and data[0] == wire.TRANSPORT and len(data) > 70 and net.clock.seconds() < 3:
            first_fragments.append(data)
            return len(first_fragments) == 1
        return False

    net.filters.append(hold_back_message_one)
    ids = [alice.endpoint.send_message(B_KEY, [B_ADDR], t) for t in ("one", "two")]
    assert net.run(lambda: "delivered" in alice.recorder.states[ids[1]], timeout=2)
    assert bob.recorder.received == []  # "two" is stored but held behind "one"
    net.detach(B_ADDR)
    bob.history.close()
    reborn = Side(net, BOB, B_ADDR, {A_KEY}, tmp_path / "b.sqlite3")
    assert net.run(lambda: reborn.recorder.received and len(reborn.recorder.received) == 2, timeout=30)
    assert reborn.recorder.texts() == ["one", "two"]


def test_stop_leaves_no_timers_behind():
    net, alice, bob = pair()
    alice.endpoint.start()
    bob.endpoint.start()
    alice.endpoint.send_message(B_KEY, [B_ADDR], "bye")
    net.run(timeout=0.02)
    alice.endpoint.stop()
    bob.endpoint.stop()
    assert net.clock.getDelayedCalls() == []


def test_listeners_may_send_and_stop_from_inside_their_callbacks():
    net, alice, bob = pair()
    chain = []

    class SendNextThenStop(Recorder):
        def message_state(self, message_id, state):
            if state != "delivered":
                return
            chain.append(message_id)
            if len(chain) < 5:
                alice.endpoint.send_message(B_KEY, [B_ADDR], f"next {len(chain)}")
            else:
                alice.endpoint.stop()

    alice.endpoint.subscribe(SendNextThenStop())
    alice.endpoint.send_message(B_KEY, [B_ADDR], "next 0")
    net.run(lambda: len(chain) == 5, timeout=10)
    net.run(timeout=1)
    assert bob.recorder.texts() == [f"next {i}" for i in range(5)]
    assert alice.endpoint._outgoing == {} and not [c for c in net.clock.getDelayedCalls() if c.active()]


def test_endpoint_tells_whether_a_session_is_up_and_which_route_it_takes():
    net, alice, bob = pair()
    assert not alice.endpoint.has_session(B_KEY) and alice.endpoint.route_of(B_KEY) is None
    message_id = alice.endpoint.send_message(B_KEY, [("127.0.0.1", 9), B_ADDR], "hi")
    assert net.run(lambda: "delivered" in alice.recorder.states[message_id], timeout=5)
    assert alice.endpoint.has_session(B_KEY) and alice.endpoint.route_of(B_KEY) == B_ADDR


def test_a_loss_after_a_quiet_spell_is_repaired_at_the_measured_timeout_not_the_initial_one():
    net, alice, bob = pair()
    first = alice.endpoint.send_message(B_KEY, [B_ADDR], "one")
    assert net.run(lambda: "delivered" in alice.recorder.states[first], timeout=5)
    net.run(timeout=30)  # nothing in flight for a while
    dropped = []
    net.filters.append(lambda data, src, dst: src == A_ADDR and data[0] == wire.TRANSPORT
                       and len(data) > 70 and not dropped and not dropped.append(data))
    sent_at = net.clock.seconds()
    second = alice.endpoint.send_message(B_KEY, [B_ADDR], "two")
    assert net.run(lambda: "delivered" in alice.recorder.states[second], timeout=5) and dropped
    took = net.clock.seconds() - sent_at
    assert took < 0.5, f"one lost datagram cost {took:.2f} s (the initial timeout is 1 s)"
