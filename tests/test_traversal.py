"""Client side of NAT traversal, against a real Introducer, on a Clock."""

from nacl.signing import SigningKey
from twisted.internet.task import Clock

from kadchat import wire
from kadchat.nat import natwire
from kadchat.nat.introducer import Introducer
from kadchat.nat.traversal import EXTRA_IDLE, MAX_EXTRA, IntroductionRoute, RelayRoute, Traversal, rendezvous_tag

INTRODUCER = ("127.0.0.10", 6881)
ALICE_ADDR, BOB_ADDR = ("127.0.0.2", 4000), ("127.0.0.3", 5000)
ALICE_SIGNING, BOB_SIGNING = SigningKey(b"a" * 32), SigningKey(b"b" * 32)
ALICE_KEY, BOB_KEY = bytes(ALICE_SIGNING.verify_key), bytes(BOB_SIGNING.verify_key)


class Wires:
    """Delivers datagrams between two clients and one introducer, synchronously."""

    def __init__(self, clock):
        self.introducer = Introducer(clock, self.deliver)
        self.clients = {}
        self.chat = []  # (receiver, datagram, address as the chat layer sees it)

    def sender(self, own_address):
        return lambda data, to: self.deliver(data, to, own_address)

    def deliver(self, data, to, source=INTRODUCER):
        message = natwire.decode(data)
        if to == INTRODUCER:
            self.introducer.handle(message, source)
        else:
            surfaced = self.clients[to].handle(message, source)
            if surfaced is not None:
                self.chat.append((to, *surfaced))


def make():
    clock = Clock()
    clock.advance(1_000_000)
    wires = Wires(clock)
    alice = Traversal(clock, wires.sender(ALICE_ADDR), ALICE_SIGNING, contacts=lambda: [BOB_KEY])
    bob = Traversal(clock, wires.sender(BOB_ADDR), BOB_SIGNING, contacts=lambda: [ALICE_KEY])
    wires.clients = {ALICE_ADDR: alice, BOB_ADDR: bob}
    return clock, wires, alice, bob


def test_tags_change_every_epoch_and_differ_per_identity():
    assert rendezvous_tag(ALICE_KEY, 1) != rendezvous_tag(ALICE_KEY, 2)
    assert rendezvous_tag(ALICE_KEY, 1) != rendezvous_tag(BOB_KEY, 1)
    assert len(rendezvous_tag(ALICE_KEY, 1)) == natwire.TAG_SIZE


def test_registration_reports_the_address_the_introducer_sees():
    _, _, alice, _ = make()
    alice.start([INTRODUCER])
    assert alice.observed == {INTRODUCER: ALICE_ADDR}
    alice.stop()


def test_initiation_through_an_introduction_surfaces_with_the_callers_address():
    _, wires, alice, bob = make()
    bob.start([INTRODUCER])
    initiation = bytes([wire.INITIATION]) + b"x" * 40
    for route in alice.routes_to(BOB_KEY, [INTRODUCER], relay=False):
        alice.send(initiation, route)
    assert wires.chat == [(BOB_ADDR, initiation, ALICE_ADDR)]
    bob.stop()


def test_only_initiations_are_introduced():
    _, wires, alice, bob = make()
    bob.start([INTRODUCER])
    route = IntroductionRoute(INTRODUCER, BOB_KEY)
    alice.send(bytes([wire.TRANSPORT]) + b"y" * 40, route)
    assert wires.chat == []
    bob.stop()


def test_relay_routes_carry_datagrams_both_ways():
    _, wires, alice, bob = make()
    bob.start([INTRODUCER])
    routes = [r for r in alice.routes_to(BOB_KEY, [INTRODUCER], relay=True) if isinstance(r, RelayRoute)]
    alice.send(b"\x03sealed-to-bob", routes[0])
    receiver, data, back = wires.chat[-1]
    assert (receiver, data) == (BOB_ADDR, b"\x03sealed-to-bob") and isinstance(back, RelayRoute)
    bob.send(b"\x03sealed-to-alice", back)
    assert wires.chat[-1][:2] == (ALICE_ADDR, b"\x03sealed-to-alice")
    bob.stop()


def test_registrations_are_renewed_and_follow_the_epoch():
    clock, wires, alice, _ = make()
    alice.start([INTRODUCER])
    clock.advance(300)  # next epoch: the tag registered ahead of time is live
    assert wires.introducer.address_of(alice.own_tag()) == ALICE_ADDR
    alice.stop()
    assert not clock.getDelayedCalls()


def test_a_relay_route_is_never_equal_to_the_introduction_route_to_the_same_tag():
    _, _, alice, _ = make()
    routes = alice.routes_to(BOB_KEY, [INTRODUCER], relay=True)
    assert len(set(routes)) == len(routes) == 4  # introduction + relay, for this epoch and the last
    assert IntroductionRoute(INTRODUCER, BOB_KEY) != RelayRoute(INTRODUCER, BOB_KEY)


def test_registration_survives_the_introducers_cookie_rotation():
    clock, wires, alice, _ = make()
    alice.start([INTRODUCER])
    for _ in range(60):  # 20 minutes of keepalives: cookies rotate every 5
        clock.advance(20)
        assert wires.introducer.address_of(alice.own_tag()) == ALICE_ADDR
    alice.stop()


def test_only_our_introducers_may_tell_us_our_address():
    _, _, alice, _ = make()
    alice.start([INTRODUCER])
    stranger = ("127.0.0.66", 6881)
    alice.handle(natwire.Registered(alice.own_tag(), ("127.0.0.99", 1), bytes(8)), stranger)
    assert alice.observed == {INTRODUCER: ALICE_ADDR}
    alice.stop()


def test_a_relayed_conversation_outlives_epochs_and_the_introducer_forgetting_old_tags():
    clock, wires, alice, bob = make()
    alice.start([INTRODUCER])
    bob.start([INTRODUCER])
    [route] = [r for r in alice.routes_to(BOB_KEY, [INTRODUCER], relay=True) if r == RelayRoute(INTRODUCER, BOB_KEY)]
    alice.send(b"\x03first", route)
    _, _, back = wires.chat[-1]
    for _ in range(3 * 300 // 20):  # three epochs; the tags of the first have expired
        clock.advance(20)
    assert wires.introducer.address_of(rendezvous_tag(BOB_KEY, alice.epoch() - 3)) is None
    alice.send(b"\x03later", route)
    assert wires.chat[-1][:2] == (BOB_ADDR, b"\x03later")
    bob.send(b"\x03answer", back)
    assert wires.chat[-1][:2] == (ALICE_ADDR, b"\x03answer")
    alice.stop()
    bob.stop()


def test_a_peer_whose_clock_is_an_epoch_ahead_is_answered_at_its_own_tag():
    clock, wires, alice, bob = make()
    alice.start([INTRODUCER])
    bob.start([INTRODUCER])
    for _ in range(8):  # into the last minute of the epoch: alice registers the next epoch's tag too
        clock.advance(20)
    from_ahead = natwire.Relay(rendezvous_tag(BOB_KEY, bob.epoch()), rendezvous_tag(ALICE_KEY, bob.epoch() + 1),
                               b"\x03x")
    wires.deliver(natwire.encode(from_ahead), INTRODUCER, ALICE_ADDR)
    _, _, back = wires.chat[-1]
    assert back == RelayRoute(INTRODUCER, ALICE_KEY, skew=1)
    bob.send(b"\x03y", back)
    assert wires.chat[-1][:2] == (ALICE_ADDR, b"\x03y")
    alice.stop()
    bob.stop()


def test_relayed_datagrams_from_strangers_or_from_non_introducers_are_dropped():
    _, _, alice, bob = make()
    bob.start([INTRODUCER])
    stranger_tag = rendezvous_tag(bytes(SigningKey(b"m" * 32).verify_key), bob.epoch())
    assert bob.handle(natwire.Relayed(stranger_tag, b"\x03x"), INTRODUCER) is None
    alice_tag = rendezvous_tag(ALICE_KEY, bob.epoch())
    assert bob.handle(natwire.Relayed(alice_tag, b"\x03x"), ("127.0.0.66", 6881)) is None
    assert bob.handle(natwire.Introduction(ALICE_ADDR, b"\x01x"), ("127.0.0.66", 6881)) is None
    assert bob.handle(natwire.Relayed(alice_tag, b"\x03x"), INTRODUCER) == (b"\x03x", RelayRoute(INTRODUCER, ALICE_KEY))
    bob.stop()


def registered_with(sent_to):
    return {to for data, to in sent_to if data[0] == natwire.REGISTER}


def recording():
    clock, sent = Clock(), []
    clock.advance(1_000_000)
    alice = Traversal(clock, lambda data, to: sent.append((data, to)), ALICE_SIGNING, contacts=lambda: [BOB_KEY])
    alice.start([INTRODUCER])
    return clock, sent, alice


def test_a_contact_cannot_make_us_register_with_ever_more_introducers():
    """Issue 12, 4: contacts' introducers are bounded, least recently used dropped."""
    clock, sent, alice = recording()
    theirs = [(f"127.0.1.{i}", 6881) for i in range(10)]
    for introducer in theirs:
        alice.routes_to(BOB_KEY, [introducer], relay=True)
        clock.advance(1)
    sent.clear()
    clock.advance(alice.keepalive)
    assert registered_with(sent) == {INTRODUCER, *theirs[-MAX_EXTRA:]}
    alice.send(b"\x03x", RelayRoute(theirs[0], BOB_KEY))  # used again: back, the least recent goes
    sent.clear()
    clock.advance(alice.keepalive)
    assert registered_with(sent) == {INTRODUCER, theirs[0], *theirs[-MAX_EXTRA + 1:]}
    alice.stop()


def test_contacts_introducers_are_dropped_when_unused_and_never_shape_our_addresses():
    clock, sent, alice = recording()
    theirs = ("127.0.0.11", 6881)
    alice.handle(natwire.Registered(alice.own_tag(), ALICE_ADDR, bytes(8)), INTRODUCER)
    alice.routes_to(BOB_KEY, [theirs], relay=True)
    alice.handle(natwire.Registered(alice.own_tag(), ("203.0.113.66", 1), bytes(8)), theirs)
    assert alice.observed == {INTRODUCER: ALICE_ADDR}  # what a contact's introducer says is not published
    assert alice.introducers == [INTRODUCER]
    assert theirs in registered_with(sent)
    clock.advance(EXTRA_IDLE + alice.keepalive)
    sent.clear()
    clock.advance(alice.keepalive)
    assert registered_with(sent) == {INTRODUCER}
    alice.stop()


def test_the_next_epochs_tag_is_registered_late_and_never_in_the_same_burst():
    """Issue 12, 3: registrations came in pairs (tag_e, tag_e+1)."""
    clock, sent, alice = recording()
    boundary = (alice.epoch() + 1) * alice.epoch_seconds
    current, ahead = rendezvous_tag(ALICE_KEY, alice.epoch()), rendezvous_tag(ALICE_KEY, alice.epoch() + 1)
    times = {current: [], ahead: []}
    log = []
    alice._send_raw = lambda data, to: log.append((clock.seconds(), natwire.decode(data).tag))
    while clock.seconds() < boundary - 1:
        clock.advance(0.5)
    for when, registered in log:
        times[registered].append(when)
    assert times[ahead] and min(times[ahead]) >= boundary - alice.lead
    assert min(abs(a - c) for a in times[ahead] for c in times[current]) >= 2.0
    alice.stop()
    assert not clock.getDelayedCalls()


class Secrets:
    def __init__(self, own, theirs):
        self.own, self._theirs = own, theirs

    def of(self, key):
        return self._theirs.get(key, b"")


def test_with_a_secret_both_tags_are_registered_and_each_reaches_us_from_whoever_can_compute_it():
    clock = Clock()
    clock.advance(1_000_000)
    wires = Wires(clock)
    bob_secret = b"s" * 32
    bob = Traversal(clock, wires.sender(BOB_ADDR), BOB_SIGNING, contacts=lambda: [ALICE_KEY],
                    secrets=Secrets(bob_secret, {}))
    alice = Traversal(clock, wires.sender(ALICE_ADDR), ALICE_SIGNING, contacts=lambda: [BOB_KEY])
    wires.clients = {ALICE_ADDR: alice, BOB_ADDR: bob}
    bob.start([INTRODUCER])
    epoch = bob.epoch()
    assert wires.introducer.address_of(rendezvous_tag(BOB_KEY, epoch, bob_secret)) == BOB_ADDR
    assert wires.introducer.address_of(rendezvous_tag(BOB_KEY, epoch)) == BOB_ADDR  # the request tag
    assert wires.introducer.registered == 2
    request = bytes([0x06]) + b"r" * 40  # a contact request goes to the request tag, as initiations
    initiation = bytes([wire.INITIATION]) + b"x" * 40
    alice.send(request, IntroductionRoute(INTRODUCER, BOB_KEY))  # she has the card only
    alice.send(initiation, IntroductionRoute(INTRODUCER, BOB_KEY, secret=bob_secret))  # she was given it
    alice.send(initiation, IntroductionRoute(INTRODUCER, BOB_KEY, secret=b"w" * 32))  # a wrong (old) one
    assert wires.chat == [(BOB_ADDR, request, ALICE_ADDR), (BOB_ADDR, initiation, ALICE_ADDR)]
    bob.stop()
