"""kadchat.sessions: handshakes on demand, rekey, dead-session recovery."""

from nacl.signing import SigningKey
from twisted.internet.task import Clock

from kadchat import wire
from kadchat.channel import Limits
from kadchat.sessions import SessionConfig, SessionManager
from tests.chat_network import LossyNetwork

ALICE, BOB, MALLORY = (SigningKey(bytes([c]) * 32) for c in b"abm")
A_KEY, B_KEY, M_KEY = (bytes(k.verify_key) for k in (ALICE, BOB, MALLORY))
A_ADDR, B_ADDR = ("127.0.0.1", 1001), ("127.0.0.1", 1002)
B2_ADDR = ("127.0.0.2", 1002)  # bob by another path


class Peer:
    """A SessionManager on the fake network, recording what it delivers."""

    def __init__(self, net, key, addr, contacts, config=SessionConfig()):
        self.payloads, self.ready = [], []
        self.manager = SessionManager(
            net.clock, lambda data, to: self.send(data, to), key, contacts.__contains__,
            lambda peer, payload: self.payloads.append((peer, payload)),
            self.ready.append, config)
        self.send = net.attach(addr, self.manager.datagram_received)


def setup(config=SessionConfig(), **net_args):
    net = LossyNetwork(Clock(), **net_args)
    alice = Peer(net, ALICE, A_ADDR, {B_KEY}, config)
    bob = Peer(net, BOB, B_ADDR, {A_KEY}, config)
    alice.manager.set_candidates(B_KEY, [B_ADDR])
    return net, alice, bob


def connect(net, alice):
    assert not alice.manager.send(B_KEY, b"first")  # no session yet: starts a handshake
    assert net.run(lambda: alice.manager.has_session(B_KEY), timeout=10)


def test_handshake_on_demand_then_payloads_flow_both_ways():
    net, alice, bob = setup()
    connect(net, alice)
    assert alice.ready == [B_KEY]
    net.run(lambda: bob.ready, timeout=1)  # alice's explicit confirmation reached bob
    assert bob.ready == [A_KEY]
    assert alice.manager.send(B_KEY, b"hi bob") and bob.manager.send(A_KEY, b"hi alice")
    net.run(lambda: alice.payloads and bob.payloads, timeout=1)
    assert bob.payloads == [(A_KEY, b"hi bob")] and alice.payloads == [(B_KEY, b"hi alice")]


def test_strangers_get_no_answer_at_all():
    net = LossyNetwork(Clock())
    mallory = Peer(net, MALLORY, A_ADDR, {B_KEY})
    bob = Peer(net, BOB, B_ADDR, {A_KEY})
    answers = []
    net.taps.append(lambda data, src, dst: src == B_ADDR and answers.append(data))
    mallory.manager.set_candidates(B_KEY, [B_ADDR])
    mallory.manager.send(B_KEY, b"spam")
    net.run(timeout=40)
    assert answers == [] and bob.manager.handshake_stats.strangers == 5
    assert not mallory.manager.has_session(B_KEY)


def test_replayed_initiation_makes_no_new_session_and_a_stale_one_no_answer():
    net, alice, bob = setup()
    inits = []
    net.taps.append(lambda data, src, dst: data[0] == wire.INITIATION and inits.append(data))
    connect(net, alice)
    sessions_before = len(bob.manager._by_index)
    net.inject(inits[0], ("127.0.0.1", 6666), B_ADDR)  # eavesdropper replays it
    net.run(timeout=1)
    assert len(bob.manager._by_index) == sessions_before
    net.clock.advance(300)  # long after the initiation's timestamp
    fresh_bob = Peer(net, BOB, B_ADDR, {A_KEY})  # even a bob that forgot what he answered
    net.inject(inits[0], ("127.0.0.1", 6666), B_ADDR)
    net.run(timeout=1)
    assert fresh_bob.manager.handshake_stats.stale == 1 and not fresh_bob.manager._by_index


def test_tampered_and_replayed_transport_are_counted_not_delivered():
    net, alice, bob = setup()
    connect(net, alice)
    captured = []
    net.taps.append(lambda data, src, dst: data[0] == wire.TRANSPORT and dst == B_ADDR and captured.append(data))
    alice.manager.send(B_KEY, b"genuine")
    net.run(lambda: bob.payloads, timeout=1)
    net.inject(captured[-1], A_ADDR, B_ADDR)  # replay
    unsent = alice.manager._peers[B_KEY].current.channel.seal(b"fresh", net.clock.seconds())
    net.inject(unsent[:-3] + bytes(3), A_ADDR, B_ADDR)  # tampered before its genuine copy
    net.inject(b"\x03garbage", A_ADDR, B_ADDR)
    net.run(timeout=1)
    stats = bob.manager.stats
    assert (stats.replayed, stats.tampered, stats.undecryptable) == (1, 1, 1)
    assert bob.payloads == [(A_KEY, b"genuine")]
    net.inject(unsent, A_ADDR, B_ADDR)  # the genuine one still gets through
    net.run(timeout=1)
    assert bob.payloads == [(A_KEY, b"genuine"), (A_KEY, b"fresh")]


def test_eavesdropper_sees_neither_identities_nor_plaintext():
    net, alice, bob = setup()
    seen = []
    net.taps.append(lambda data, src, dst: seen.append(data))
    connect(net, alice)
    alice.manager.send(B_KEY, b"the secret plan")
    net.run(lambda: bob.payloads, timeout=1)
    for data in seen:
        assert A_KEY not in data and B_KEY not in data and b"secret" not in data


def test_restarted_peer_says_unknown_session_and_a_new_handshake_follows():
    net, alice, bob = setup()
    connect(net, alice)
    net.run(lambda: bob.ready, timeout=1)
    new_bob = Peer(net, BOB, B_ADDR, {A_KEY})  # same address, no memory of the session
    assert alice.manager.send(B_KEY, b"lost")  # sealed under the session bob forgot
    net.run(lambda: len(alice.ready) == 2, timeout=5)
    assert alice.manager.handshake_stats.unknown_session_notices == 1
    assert new_bob.manager.stats.undecryptable == 1
    assert alice.manager.send(B_KEY, b"again")
    net.run(lambda: new_bob.payloads, timeout=1)
    assert new_bob.payloads == [(A_KEY, b"again")]


def test_silent_peer_triggers_a_new_handshake():
    net, alice, bob = setup(SessionConfig(stale_after=5.0))
    connect(net, alice)
    net.detach(B_ADDR)  # bob vanishes without a word
    started = alice.manager.handshake_stats.started
    alice.manager.send(B_KEY, b"anyone?")
    net.clock.advance(4.0)
    alice.manager.send(B_KEY, b"anyone?")
    assert alice.manager.handshake_stats.started == started
    net.clock.advance(2.0)
    alice.manager.send(B_KEY, b"anyone?")
    assert alice.manager.handshake_stats.started == started + 1


def test_acks_that_get_no_answer_do_not_look_like_a_dead_peer():
    net, alice, bob = setup(SessionConfig(stale_after=5.0))
    connect(net, alice)
    net.run(lambda: bob.manager.has_session(A_KEY), timeout=1)
    started = bob.manager.handshake_stats.started
    for _ in range(10):
        bob.manager.send(A_KEY, b"ack", expects_answer=False)
        net.clock.advance(1.0)
    assert bob.manager.handshake_stats.started == started


def test_rekey_after_n_messages_and_old_datagrams_still_drain():
    limits = Limits(rekey_after_messages=5)
    net, alice, bob = setup(SessionConfig(limits=limits))
    connect(net, alice)
    net.run(lambda: bob.ready, timeout=1)
    first_index = alice.manager._peers[B_KEY].current.handshake.local_index
    held = []
    net.taps.append(lambda data, src, dst: data[0] == wire.TRANSPORT and src == A_ADDR and held.append(data))
    for i in range(6):  # the sixth send asks for a new handshake
        alice.manager.send(B_KEY, b"m%d" % i)
    net.run(lambda: len(alice.ready) == 2, timeout=5)
    assert alice.manager._peers[B_KEY].current.handshake.local_index != first_index
    net.run(lambda: len(bob.payloads) == 6, timeout=1)
    bob.payloads.clear()
    net.inject(held[0][:], A_ADDR, B_ADDR)  # an old-key datagram arriving late is a replay
    late = alice.manager._peers[B_KEY].previous.channel.seal(b"late", net.clock.seconds())
    net.inject(late, A_ADDR, B_ADDR)  # one sealed under the old keys just before the switch
    net.run(lambda: bob.payloads, timeout=1)
    assert bob.payloads == [(A_KEY, b"late")] and bob.manager.stats.replayed == 1


def test_first_authenticated_answer_among_candidates_wins():
    net, alice, bob = setup()
    dead = ("127.0.0.1", 9)
    alice.manager.set_candidates(B_KEY, [dead, B_ADDR])
    targets = []
    net.taps.append(lambda data, src, dst: data[0] == wire.INITIATION and targets.append(dst))
    assert alice.manager.address_of(B_KEY) is None
    connect(net, alice)
    assert targets == [dead, B_ADDR]
    assert alice.manager.address_of(B_KEY) == B_ADDR


def test_a_candidate_added_during_an_attempt_gets_a_handshake_at_once():
    net, alice, bob = setup(SessionConfig(handshake_retry=4.0))
    dead = ("127.0.0.1", 9)
    alice.manager.set_candidates(B_KEY, [dead])
    assert not alice.manager.send(B_KEY, b"first")  # the attempt starts, towards nowhere
    net.run(timeout=0.5)
    alice.manager.set_candidates(B_KEY, [dead, B_ADDR])  # e.g. the relay route, a bit later
    assert net.run(lambda: alice.manager.has_session(B_KEY), timeout=1.0)  # not after 4 s


def test_duplicate_initiation_via_two_paths_gets_the_same_answer_twice():
    net, alice, bob = setup()
    other_path = ("127.0.0.2", 1002)  # bob reachable under a second address too
    net.attach(other_path, bob.manager.datagram_received)
    alice.manager.set_candidates(B_KEY, [B_ADDR, other_path])
    responses = []
    net.taps.append(lambda data, src, dst: data[0] == wire.RESPONSE and responses.append(data))
    connect(net, alice)
    net.run(timeout=1)
    assert len(responses) == 2 and responses[0] == responses[1]
    assert bob.manager.handshake_stats.answered == 1


def test_live_traffic_is_a_keyed_sessions_transport_from_its_peers_address_only():
    net, alice, bob = setup()
    connect(net, alice)
    net.run(lambda: bob.manager.has_session(A_KEY), timeout=1)
    sent, send = [], alice.send
    alice.send = lambda data, to: (sent.append(data), send(data, to))
    alice.manager.send(B_KEY, b"a file's piece")
    transport = sent[-1]
    assert bob.manager.is_live_traffic(transport, A_ADDR)
    assert not bob.manager.is_live_traffic(transport, ("127.0.0.1", 9999))  # another source
    assert not bob.manager.is_live_traffic(transport[:1] + bytes(4) + transport[5:], A_ADDR)  # no such session
    assert not bob.manager.is_live_traffic(transport[:3], A_ADDR)
    assert not bob.manager.is_live_traffic(bytes([wire.INITIATION]) + transport[1:], A_ADDR)
    bob.manager.drop(A_KEY)
    assert not bob.manager.is_live_traffic(transport, A_ADDR)


def test_peer_roaming_moves_the_session_address():
    net, alice, bob = setup()
    connect(net, alice)
    net.run(lambda: bob.manager.has_session(A_KEY), timeout=1)
    roamed = ("127.0.0.1", 2001)
    alice.send = net.attach(roamed, alice.manager.datagram_received)
    net.detach(A_ADDR)
    alice.manager.send(B_KEY, b"from my new address")
    net.run(lambda: bob.payloads, timeout=1)
    bob.manager.send(A_KEY, b"got it")
    net.run(lambda: alice.payloads, timeout=1)
    assert alice.payloads == [(B_KEY, b"got it")]


def test_unreachable_peer_gives_up_after_the_attempts_and_stop_leaves_no_timers():
    net = LossyNetwork(Clock())
    alice = Peer(net, ALICE, A_ADDR, {B_KEY})
    alice.manager.start()
    alice.manager.set_candidates(B_KEY, [B_ADDR])  # nobody there
    alice.manager.send(B_KEY, b"hello?")
    net.clock.pump([1.0] * 40)
    assert alice.manager.handshake_stats.started == 5
    assert alice.manager._peers[B_KEY].attempt is None
    alice.manager.send(B_KEY, b"hello?")
    assert alice.manager._peers[B_KEY].attempt is not None
    alice.manager.stop()
    assert net.clock.getDelayedCalls() == []


def test_unconfirmed_answer_is_swept_away():
    net, alice, bob = setup()
    bob.manager.start()
    net.taps.append(lambda data, src, dst: data[0] == wire.RESPONSE and net.detach(A_ADDR))
    alice.manager.send(B_KEY, b"x")
    net.run(timeout=0.5)
    [answer] = bob.manager._peers[A_KEY].answers
    index = answer.handshake.local_index
    net.clock.pump([10.0] * 3)
    assert not bob.manager._peers[A_KEY].answers and index not in bob.manager._by_index
    bob.manager.stop()


def test_malformed_datagrams_are_counted_never_raised():
    net, alice, bob = setup()
    for junk in (b"", b"\x01", b"\x0e" * 30):  # not even well formed
        bob.manager.datagram_received(junk, A_ADDR)
    for stray in (b"\x02" + bytes(56), b"\x04\0\0\0\1" + bytes(16)):  # answers to nothing we asked
        bob.manager.datagram_received(stray, A_ADDR)
    assert bob.manager.stats.undecryptable == 3 and not bob.manager._peers


def test_an_initiation_replayed_after_the_callee_restarts_is_not_answered(tmp_path):
    """Issue 12, 4: the replay guard lived in memory only."""
    config = SessionConfig(replay_path=str(tmp_path / "answered-initiations"))
    net, alice, bob = setup(config)
    inits = []
    net.taps.append(lambda data, src, dst: data[0] == wire.INITIATION and inits.append(data))
    connect(net, alice)
    net.clock.advance(30)  # well inside the initiation's time window
    answers = []
    replayer = ("127.0.0.1", 6666)
    net.taps.append(lambda data, src, dst: dst == replayer and answers.append(data))
    restarted = Peer(net, BOB, B_ADDR, {A_KEY}, config)  # a new process: nothing in memory
    net.inject(inits[0], replayer, B_ADDR)
    net.run(timeout=1)
    assert answers == [] and restarted.manager.handshake_stats.stale == 1
    # Alice's next datagram gets an UNKNOWN_SESSION, and her fresh initiation is answered.
    assert net.run(lambda: restarted.manager.has_session(A_KEY), timeout=10)


def test_forged_unknown_session_notices_neither_break_the_session_nor_force_handshakes():
    """Issue 12, 4: anyone on the path can send UNKNOWN_SESSION; without the reset token it is ignored."""
    net, alice, bob = setup()
    connect(net, alice)
    net.run(lambda: bob.ready, timeout=1)
    started = alice.manager.handshake_stats.started
    for n in range(20):  # over 20 s, spoofed from bob's address
        index = alice.manager._peers[B_KEY].current.channel.keys.remote_index  # in every datagram alice sends
        net.inject(wire.encode_unknown_session(index, bytes([n]) * 16), B_ADDR, A_ADDR)
        net.run(timeout=1)
        assert alice.manager.has_session(B_KEY)
        # (no answer expected: a silent peer would be a reason of its own to handshake)
        assert alice.manager.send(B_KEY, b"still here %d" % n, expects_answer=False)
    net.run(timeout=1)
    assert alice.manager.handshake_stats.started == started
    assert (alice.manager.handshake_stats.forged_notices, alice.manager.handshake_stats.unknown_session_notices) == (20, 0)
    assert [p for _, p in bob.payloads if p.startswith(b"still here")] == [b"still here %d" % n for n in range(20)]


def test_a_dropped_session_is_gone_and_the_next_connect_makes_a_new_one():
    # Live presence drops the session of a contact that went silent: reaching it again
    # must handshake, not seal into a session the other side may have lost.
    net, alice, bob = setup()
    connect(net, alice)
    alice.manager.drop(B_KEY)
    assert not alice.manager.has_session(B_KEY)
    alice.manager.connect(B_KEY)
    assert net.run(lambda: len(alice.ready) == 2, timeout=5)
    alice.manager.drop(M_KEY)  # nobody we know: nothing to drop


def test_the_answer_to_an_earlier_initiation_of_an_attempt_still_makes_both_ends_share_the_session():
    # After a restart an attempt sends initiations within milliseconds (whereabouts, the
    # look-up, the relay): bob answers the first, then the second; alice takes the first
    # answer. Bob must still know it, or alice's datagrams (and his, under the session he
    # settles on) are unreadable on the other side: a goodbye lost, offline only after 45 s.
    net, alice, bob = setup(latency=(0.01, 0.01))
    net.attach(B2_ADDR, bob.manager.datagram_received)
    bob.manager.start()
    alice.manager.connect(B_KEY)
    net.run(timeout=0.005)
    alice.manager.set_candidates(B_KEY, [B_ADDR, B2_ADDR])  # a second initiation, before the first answer
    net.run(lambda: alice.ready and bob.ready, timeout=0.1)
    assert alice.ready == [B_KEY] and bob.ready == [A_KEY]
    assert bob.manager.handshake_stats.answered == 2 and bob.manager.handshake_stats.started == 0
    assert bob.manager.send(A_KEY, b"goodbye", expects_answer=False)
    assert alice.manager.send(B_KEY, b"goodbye", expects_answer=False)
    net.run(timeout=0.05)
    assert (B_KEY, b"goodbye") in alice.payloads and (A_KEY, b"goodbye") in bob.payloads
    assert alice.manager.handshake_stats.unknown_session_notices == 0
    net.run(timeout=20)  # the second answer, never confirmed, goes with the sweep
    assert not bob.manager._peers[A_KEY].answers
    bob.manager.stop()


def test_a_leaving_peer_neither_answers_nor_starts_handshakes_but_its_session_still_carries_the_goodbye():
    # After its goodbye bob is still up for a while (his offline record goes out): alice,
    # who dropped the session on hearing it, must not get a new one that ends as he exits.
    net, alice, bob = setup()
    connect(net, alice)
    net.run(lambda: bob.ready, timeout=1)
    bob.manager.leave()
    assert bob.manager.send(A_KEY, b"goodbye", expects_answer=False)
    net.run(lambda: (B_KEY, b"goodbye") in alice.payloads, timeout=1)
    alice.manager.drop(B_KEY)
    alice.manager.connect(B_KEY)
    bob.manager.set_candidates(A_KEY, [A_ADDR])
    bob.manager.drop(A_KEY)
    bob.manager.connect(A_KEY)
    net.run(timeout=40)
    assert not alice.manager.has_session(B_KEY) and not bob.manager.has_session(A_KEY)
    assert bob.manager.handshake_stats.answered == 1 and bob.manager.handshake_stats.started == 0
    assert alice.manager.handshake_stats.started > 1 and alice.manager.handshake_stats.completed == 1  # unanswered


def test_a_probe_carries_nothing_and_moves_the_peers_end_of_the_session_to_where_it_came_from():
    net, alice, bob = setup()
    assert not alice.manager.probe(B_KEY, [B_ADDR])  # no session: nothing to probe with
    connect(net, alice)
    net.run(lambda: bob.manager.has_session(A_KEY), timeout=1)
    assert bob.manager.address_of(A_KEY) == A_ADDR  # say, a relay route
    direct = ("127.0.0.1", 3001)
    alice.send = net.attach(direct, alice.manager.datagram_received)  # ... and now the punched path
    assert alice.manager.probe(B_KEY, [B_ADDR, ("127.0.0.1", 9)])  # one address leads nowhere
    net.run(timeout=1)
    assert bob.manager.address_of(A_KEY) == direct
    assert bob.payloads == []
