"""kadchat.cookies: a handshake budget, and cookie replies past it."""

from twisted.internet.task import Clock

from kadchat import cookies, wire
from kadchat.cookies import ANSWER, COOKIE, INVALID, OVER_BUDGET, HandshakeBudget, InitiationGate
from kadchat.handshake import Handshake, StaticIdentity
from kadchat.sessions import SessionConfig
from tests.test_sessions import A_KEY, ALICE, B_ADDR, B_KEY, BOB, MALLORY, Peer, connect, setup
from tests.chat_network import LossyNetwork

SMALL = HandshakeBudget(rate=10.0, burst=2, proven_rate=100.0, per_address_rate=1.0, per_address_burst=2,
                        cookie_rate=100.0, cookie_lifetime=120.0)
CALLER = ("127.0.0.1", 4000)


def initiation(signing_key=ALICE, callee=B_KEY, now=0.0):
    _, datagram = Handshake.initiate(StaticIdentity(signing_key), callee, 1, now)
    return cookies.with_mac1(datagram, callee)


def gate(clock, budget=SMALL):
    return InitiationGate(clock.seconds, B_KEY, budget)


def cookie_for(g, datagram, addr):
    reply = wire.decode(g.cookie_reply(wire.decode(datagram), datagram, addr))
    return cookies.open_cookie_reply(reply, B_KEY, datagram)


def test_an_initiation_without_our_mac1_is_refused_before_any_work():
    g = gate(Clock())
    unmacked = initiation()[:wire.INITIATION_MAC1_AT] + bytes(2 * wire.MAC_SIZE)
    for_someone_else = initiation(callee=A_KEY)
    assert g.admit(unmacked, CALLER) == INVALID and g.admit(for_someone_else, CALLER) == INVALID
    assert g.admit(initiation(), CALLER) == ANSWER


def test_past_the_budget_initiations_get_a_cookie_and_the_cookie_proves_the_address():
    clock = Clock()
    g = gate(clock)
    datagram = initiation()
    assert [g.admit(datagram, CALLER) for _ in range(3)] == [ANSWER, ANSWER, COOKIE]
    assert g.under_load
    cookie = cookie_for(g, datagram, CALLER)
    proven = cookies.with_mac2(datagram, cookie)
    assert g.admit(proven, CALLER) == ANSWER
    assert g.admit(proven, ("127.0.0.1", 4001)) == COOKIE  # the cookie is bound to the address
    clock.advance(1.0)  # the open budget refills: no cookie needed
    assert g.admit(datagram, CALLER) == ANSWER and not g.under_load


def test_a_cookie_reply_opens_only_for_the_initiation_it_answers():
    g = gate(Clock())
    datagram, other = initiation(), initiation()
    reply = wire.decode(g.cookie_reply(wire.decode(datagram), datagram, CALLER))
    assert len(cookies.open_cookie_reply(reply, B_KEY, datagram)) == wire.MAC_SIZE
    for wrong_key, wrong_initiation in ((A_KEY, datagram), (B_KEY, other)):
        try:
            cookies.open_cookie_reply(reply, wrong_key, wrong_initiation)
        except cookies.CookieError:
            continue
        raise AssertionError("a cookie reply opened with the wrong key or initiation")


def test_a_cookie_outlives_one_secret_rotation_but_not_two():
    clock = Clock()
    g = gate(clock, HandshakeBudget(rate=1.0, burst=1, cookie_lifetime=120.0))
    datagram = initiation()
    g.admit(datagram, CALLER)
    proven = cookies.with_mac2(datagram, cookie_for(g, datagram, CALLER))
    for expected in (ANSWER, ANSWER, COOKIE):
        g.admit(datagram, CALLER)  # spend the open budget: under load again
        assert g.admit(proven, CALLER) == expected
        clock.advance(120.0)


def test_a_spoofed_flood_gets_at_most_the_budget_of_handshakes_and_of_cookie_replies():
    clock = Clock()
    g = gate(clock)
    datagram = initiation(MALLORY)
    verdicts = []
    for i in range(20_000):  # 20,000 initiations a second from 20,000 addresses, for 2 s
        verdicts.append(g.admit(datagram, ("127.0.%d.%d" % (i // 250, i % 250 + 1), 9)))
        clock.advance(1e-4)
    answered, replied = verdicts.count(ANSWER), verdicts.count(COOKIE)
    assert answered <= SMALL.burst + 2 * SMALL.rate, f"{answered} handshakes in 2 s"
    assert replied <= 2.1 * SMALL.cookie_rate, f"{replied} cookie replies in 2 s"
    assert verdicts.count(OVER_BUDGET) == 20_000 - answered - replied


def test_per_address_limit_holds_for_proven_initiations():
    g = gate(Clock())
    datagram = initiation()
    g.admit(datagram, CALLER), g.admit(datagram, CALLER)  # the open budget is spent
    proven = cookies.with_mac2(datagram, cookie_for(g, datagram, CALLER))
    verdicts = [g.admit(proven, CALLER) for _ in range(5)]
    assert verdicts == [ANSWER, ANSWER, OVER_BUDGET, OVER_BUDGET, OVER_BUDGET]


def test_an_initiator_answered_with_a_cookie_resends_at_once_and_completes():
    net, alice, bob = setup(SessionConfig(handshake_retry=5.0, budget=HandshakeBudget(rate=0.001, burst=0)))
    kinds = []
    net.taps.append(lambda data, src, dst: kinds.append(data[0]))
    connect(net, alice)
    assert net.clock.seconds() < 0.1, "the handshake waited for a retry instead of resending at once"
    assert kinds[:4] == [wire.INITIATION, wire.COOKIE_REPLY, wire.INITIATION, wire.RESPONSE]
    assert (bob.manager.handshake_stats.cookies_sent, alice.manager.handshake_stats.cookies_received) == (1, 1)


def test_strangers_flooding_a_peer_under_load_cost_it_a_bounded_number_of_handshakes():
    # Finding 4: every spoofed initiation cost an X25519 and an AEAD open.
    net = LossyNetwork(Clock())
    bob = Peer(net, BOB, B_ADDR, {A_KEY}, SessionConfig(budget=SMALL))
    flood = [initiation(MALLORY) for _ in range(50)]
    for i in range(5000):  # 5,000 initiations from as many spoofed addresses in one second
        net.inject(flood[i % 50], ("127.1.%d.%d" % (i // 250, i % 250 + 1), 7), B_ADDR)
        net.clock.advance(2e-4)
    net.run(timeout=1)
    stats = bob.manager.handshake_stats
    assert stats.strangers <= SMALL.burst + SMALL.rate, f"{stats.strangers} stranger handshakes in 1 s"
    assert stats.cookies_sent <= 1.1 * SMALL.cookie_rate


def test_an_address_a_session_vouched_for_needs_no_cookie_under_load():
    clock = Clock()
    g = gate(clock)
    datagram = initiation()
    g.admit(datagram, CALLER), g.admit(datagram, CALLER)  # the open budget is spent
    assert g.admit(datagram, CALLER) == COOKIE
    g.vouch(CALLER)
    assert g.admit(datagram, CALLER) == ANSWER and g.admit(datagram, ("127.0.0.1", 4001)) == COOKIE
    clock.advance(SMALL.cookie_lifetime)
    g.admit(datagram, CALLER), g.admit(datagram, CALLER)
    assert g.admit(datagram, CALLER) == COOKIE  # vouched for too long ago


def test_a_contact_rekeys_under_load_without_a_cookie_round_trip():
    budget = HandshakeBudget(rate=0.001, burst=1, cookie_rate=0.001)  # one handshake, then under load
    net, alice, bob = setup(SessionConfig(budget=budget))
    connect(net, alice)
    alice.manager.send(B_KEY, b"confirmed")
    net.run(lambda: bob.ready, timeout=1)
    ready = len(alice.ready)
    for _ in range(13):  # traffic for 130 s: the keys want replacing after 120
        alice.manager.send(B_KEY, b"tick", expects_answer=False)
        net.run(timeout=10.0)
    assert len(alice.ready) > ready
    assert bob.manager.handshake_stats.cookies_sent == 0  # alice's address was vouched for by her session
