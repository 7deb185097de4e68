"""kadchat.reachability: our own addresses, and the direct-then-relay race towards a contact."""

from nacl.signing import SigningKey
from twisted.internet import task

from kadchat.nat import natwire
from kadchat.nat.traversal import IntroductionRoute, RelayRoute
from kadchat.presence import Presence
from kadchat.reachability import PROBES_AFTER, PUNCH_GRACE, RELAY_SOON, Reachability, lan_address

ME, PEER = SigningKey(bytes([1]) * 32), bytes(SigningKey(bytes([2]) * 32).verify_key)
INTRODUCER = ("203.0.113.9", 6881)
PEER_HOME = Presence("online", addrs=[("198.51.100.7", 40001)], nat="consistent", introducers=[INTRODUCER])


class Sessions:
    """Stands in for the chat endpoint: records offered paths, and whether a session is up."""

    def __init__(self, clock):
        self.clock, self.offers, self.up = clock, [], set()
        self.routes = {}  # key -> where its session sends
        self.probes = []  # (when, key, addrs)

    def offer(self, key, paths):
        self.offers.append((self.clock.seconds(), key, paths))

    def has_session(self, key):
        return key in self.up

    def route_of(self, key):
        return self.routes.get(key)

    def probe(self, key, addrs):
        self.probes.append((self.clock.seconds(), key, addrs))
        return key in self.up


def setup():
    clock, sent, changes = task.Clock(), [], []
    sessions = Sessions(clock)
    reach = Reachability(clock, lambda data, to: sent.append((data, to)), ME, lambda: [PEER],
                         sessions.offer, sessions.has_session, lambda: changes.append(clock.seconds()),
                         route_of=sessions.route_of, probe=sessions.probe)
    return clock, sent, changes, sessions, reach


def kinds(paths):
    return [type(p).__name__ if not isinstance(p, tuple) else "address" for p in paths]


def test_direct_paths_go_out_at_once_and_the_relay_after_a_short_grace_while_our_nat_is_unknown():
    clock, sent, changes, sessions, reach = setup()
    assert reach.votes.nat_class() == "unknown"  # no DHT peer has voted: a small swarm's case
    reach.reach(PEER, PEER_HOME)
    [(when, key, paths)] = sessions.offers
    assert (when, key) == (0, PEER)
    assert paths[0] == ("198.51.100.7", 40001)
    assert set(kinds(paths)) == {"address", "IntroductionRoute"}
    clock.advance(RELAY_SOON)
    assert len(sessions.offers) == 2
    assert "RelayRoute" in kinds(sessions.offers[1][2])
    assert clock.getDelayedCalls() == []


def test_both_nats_known_to_keep_their_ports_get_the_long_punching_grace():
    clock, sent, changes, sessions, reach = setup()
    for voter in range(3):
        reach.votes.add((f"192.0.2.{voter}", 6881), b"id", ("198.51.100.1", 5000))
    assert reach.votes.nat_class() == "consistent"
    reach.reach(PEER, PEER_HOME)
    clock.advance(PUNCH_GRACE - 0.1)
    assert len(sessions.offers) == 1
    clock.advance(0.1)
    assert "RelayRoute" in kinds(sessions.offers[1][2])


def test_a_session_up_within_the_grace_period_keeps_the_relay_out():
    clock, sent, changes, sessions, reach = setup()
    reach.reach(PEER, PEER_HOME)
    clock.advance(RELAY_SOON / 2)
    sessions.up.add(PEER)
    sessions.routes[PEER] = PEER_HOME.addrs[0]
    reach.session_ready(PEER)
    clock.advance(10.0)
    assert len(sessions.offers) == 1
    assert sessions.probes == []  # direct already: nothing to try
    assert clock.getDelayedCalls() == []


def test_reaching_again_replaces_the_race_and_offer_direct_false_offers_only_the_relay():
    clock, sent, changes, sessions, reach = setup()
    reach.reach(PEER, PEER_HOME)
    clock.advance(RELAY_SOON * 0.6)
    reach.reach(PEER, PEER_HOME, offer_direct=False)
    clock.advance(RELAY_SOON * 0.6)
    assert len(sessions.offers) == 1  # the first race's relay start was cancelled
    clock.advance(RELAY_SOON * 0.6)
    assert [kinds(p).count("RelayRoute") > 0 for _, _, p in sessions.offers] == [False, True]


def test_both_nats_random_means_the_relay_from_the_start():
    clock, sent, changes, sessions, reach = setup()
    for voter in range(3):
        reach.votes.add((f"192.0.2.{voter}", 6881), b"id", ("198.51.100.1", 5000 + voter))
    assert reach.votes.nat_class() == "random" and reach.kind() == "relayed"
    reach.reach(PEER, Presence("online", nat="random", introducers=[INTRODUCER]))
    assert "RelayRoute" in kinds(sessions.offers[0][2])


def test_an_introducer_seeing_us_somewhere_new_is_news_once():
    clock, sent, changes, sessions, reach = setup()
    reach.traversal.start([INTRODUCER])
    registered = natwire.Registered(b"t" * natwire.TAG_SIZE, ("198.51.100.1", 4000), b"c" * 8)
    reach.nat_message_received(registered, INTRODUCER)
    reach.nat_message_received(registered, INTRODUCER)
    assert changes == [0]
    assert reach.own_addresses() == [("198.51.100.1", 4000)]
    assert reach.external_address() == ("198.51.100.1", 4000)
    reach.stop()


def test_routes_are_told_apart_for_the_ui():
    assert Reachability.route_kind(RelayRoute(INTRODUCER, PEER)) == "relayed"
    assert Reachability.route_kind(("198.51.100.7", 40001)) == "direct"
    assert Reachability.route_kind(IntroductionRoute(INTRODUCER, PEER)) == "direct"


def test_lan_address_is_the_bound_one_unless_bound_to_all():
    assert lan_address(("127.0.0.5", 7000), ("127.0.0.1", 6881)) == ("127.0.0.5", 7000)
    assert lan_address(("0.0.0.0", 7000), None) is None
    assert lan_address(("0.0.0.0", 7000), ("127.0.0.1", 6881)) == ("127.0.0.1", 7000)


def test_a_session_up_after_the_relay_started_ends_the_race_cleanly():
    # Both contenders wait for the session then; the first woken wins and cancels the
    # other, whose wait session_ready had already taken (seen with 100 contacts: ValueError).
    clock, sent, changes, sessions, reach = setup()
    reach.reach(PEER, PEER_HOME)
    clock.advance(RELAY_SOON + 1)
    assert len(sessions.offers) == 2
    sessions.up.add(PEER)
    reach.session_ready(PEER)
    assert reach._races == {} and reach._waiting == {}
    assert clock.getDelayedCalls() == []


def test_a_relayed_session_tries_the_direct_addresses_until_it_goes_direct():
    clock, sent, changes, sessions, reach = setup()
    reach.reach(PEER, PEER_HOME)
    clock.advance(RELAY_SOON)
    sessions.up.add(PEER)
    sessions.routes[PEER] = RelayRoute(INTRODUCER, PEER)
    reach.session_ready(PEER)
    clock.pump([0.5] * int(PROBES_AFTER[2] / 0.5))
    assert [(when - RELAY_SOON, addrs) for when, _, addrs in sessions.probes] == [
        (after, list(PEER_HOME.addrs)) for after in PROBES_AFTER[:3]]
    sessions.routes[PEER] = PEER_HOME.addrs[0]  # a probe got through: the peer answered from there
    clock.pump([1.0] * int(PROBES_AFTER[-1]))
    assert len(sessions.probes) == 3
    assert clock.getDelayedCalls() == []


def test_probes_stop_with_the_session_and_at_the_last_step():
    clock, sent, changes, sessions, reach = setup()
    reach.reach(PEER, PEER_HOME)
    clock.advance(RELAY_SOON)
    sessions.up.add(PEER)
    sessions.routes[PEER] = RelayRoute(INTRODUCER, PEER)
    reach.session_ready(PEER)
    clock.pump([1.0] * int(PROBES_AFTER[-1] + 60))
    assert len(sessions.probes) == len(PROBES_AFTER)  # a random NAT: the relay stays
    reach.session_ready(PEER)  # new keys (a rekey), still relayed: try again
    sessions.up.discard(PEER)  # ... but the session went
    del sessions.routes[PEER]
    clock.advance(60)
    assert len(sessions.probes) == len(PROBES_AFTER) + 1
    assert clock.getDelayedCalls() == []
