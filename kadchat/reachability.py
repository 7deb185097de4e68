"""Reachability: where contacts can reach us, and how we reach them.

Ours: the address most DHT nodes see us at and our NAT class (kadchat.addrvote),
the addresses our introducers see, our LAN address, and the introducers we
keep registrations with (kadchat.nat.traversal). Theirs: a contact's record
lists addresses and introducers; we offer the session layer every direct path
and hole punching at once, and the relay only if no session is up within a
grace period: `punch_grace` when both NATs are known to keep their ports
(punching works, given time), `relay_soon` when either may not (random, or not
known yet: a small swarm has too few DHT peers to tell), none when both are
random (DESIGN.md). A session that came up relayed keeps trying the contact's
direct addresses under its keys for a while (`PROBES_AFTER`): once one gets
through, the session moves there and the relay drops out, as Tailscale's
connections leave DERP; presence sees one session throughout, so nothing flaps.
Where each contact was last reachable is kept (kadchat.whereabouts): once we
have joined, every contact is tried there at once, before any DHT look-up.
"""

import socket

from twisted.internet import defer

from kadchat.addrvote import CONSISTENT, RANDOM, AddressVotes
from kadchat.messaging import EndpointListener
from kadchat.nat import natwire
from kadchat.nat.traversal import RelayRoute, Traversal
from kadchat.presence import MAX_ADDRS, ONLINE, Presence
from kadchat.presencesecret import NoSecrets
from kadchat.race import race
from kademlia.timers import cancel

PUNCH_GRACE = 3.0  # both NATs keep their ports: punch this long before relaying
RELAY_SOON = 1.0  # either NAT may not: a session within 2 s even if only the relay works
PROBES_AFTER = (0.0, 1.0, 3.0, 7.0, 15.0)  # seconds after a relayed session came up: try going direct
INTRODUCERS_KEPT = 3  # registrations we keep alive (a record lists up to presence.MAX_INTRODUCERS)


class Reachability(EndpointListener):  # the endpoint tells it when a session is up
    def __init__(self, clock, send_raw, signing_key, contacts, offer, has_session, on_addresses_changed,
                 epoch_seconds=300, punch_grace=PUNCH_GRACE, relay_soon=RELAY_SOON, secrets=NoSecrets,
                 route_of=lambda key: None, probe=lambda key, addrs: False, whereabouts=None):
        """`offer(peer_key, paths)` hands paths to the session layer; `has_session(peer_key)`
        says whether one is up; `on_addresses_changed()` is told when an introducer sees
        us somewhere new, so that the presence record can follow. `route_of(peer_key)` is
        where the session with the peer sends (None without one), `probe(peer_key, addrs)`
        tries other addresses under it (kadchat.sessions.SessionManager.probe); `whereabouts`
        (kadchat.whereabouts.Whereabouts, loaded) keeps where contacts were last reachable."""
        self._clock = clock
        self._offer = offer
        self._has_session = has_session
        self._on_addresses_changed = on_addresses_changed
        self._punch_grace = punch_grace
        self._relay_soon = relay_soon
        self._route_of = route_of
        self._probe = probe
        self._contacts = contacts
        self.whereabouts = whereabouts
        self.votes = AddressVotes(clock.seconds)
        self.traversal = Traversal(clock, send_raw, signing_key, epoch_seconds, contacts=contacts, secrets=secrets)
        self.lan = None
        self._races = {}  # peer key -> the race of its paths now running
        self._waiting = {}  # peer key -> Deferreds fired when a session with it is up
        self._records = {}  # peer key -> the newest Presence we reached it by
        self._probing = {}  # peer key -> the timer of its relayed session's next probe

    def start(self, routing_table, bootstrap_addresses):
        """Register with introducers: the bootstrap nodes that answered (long-lived, as a
        rule), else the DHT nodes closest to us."""
        answering = {c.address for c in routing_table.contacts()}
        introducers = [a for a in bootstrap_addresses if a in answering] or [
            c.address for c in routing_table.closest(routing_table.own_id)]
        self.traversal.start(introducers[:INTRODUCERS_KEPT])
        if self.whereabouts is not None:
            for peer_key, presence in self.whereabouts.known(self._contacts()):
                if not self._has_session(peer_key):
                    self.reach(peer_key, presence)

    def stop(self):
        for d in list(self._races.values()):
            d.cancel()
        for peer_key in list(self._probing):
            self._stop_probing(peer_key)
        if self.whereabouts is not None:
            self.whereabouts.stop()
        return self.traversal.stop()

    # -- us ------------------------------------------------------------------------

    def own_addresses(self):
        """Where contacts may reach us: our address as most DHT nodes see it, as our
        introducers see it (all a small swarm may know: too few voters), on our LAN."""
        found = [self.votes.external_address(), *self.traversal.observed.values(), self.lan]
        return [a for a in dict.fromkeys(found) if a is not None][:MAX_ADDRS]

    def own_presence(self, status=ONLINE):
        return Presence(status=status, addrs=self.own_addresses(), nat=self.votes.nat_class(),
                        introducers=self.traversal.introducers, ts=self._clock.seconds())

    def external_address(self):
        seen_by_introducers = next(iter(self.traversal.observed.values()), None)
        return self.votes.external_address() or seen_by_introducers

    def kind(self):
        """direct, relayed or unknown: how contacts are likely to reach us."""
        nat = self.votes.nat_class()
        if nat == RANDOM:
            return "relayed"
        if nat == CONSISTENT or self.votes.external_address() is not None:
            return "direct"
        return "unknown"

    def nat_message_received(self, message, address):
        """A NAT datagram for us as a client; returns the chat datagram it carried with
        the address to answer, or None."""
        if not isinstance(message, natwire.Registered):
            return self.traversal.handle(message, address)
        before = self.own_addresses()
        self.traversal.handle(message, address)
        if self.own_addresses() != before:
            self._on_addresses_changed()
        return None

    # -- them ----------------------------------------------------------------------

    def paths(self, peer_key, presence, relay=None):
        """Where to send a handshake to the contact: its addresses, and through its
        introducers; the relay too if asked, or from the start if both NATs are random."""
        if relay is None:
            relay = presence.nat == RANDOM and self.votes.nat_class() == RANDOM
        return list(presence.addrs) + self.traversal.routes_to(peer_key, presence.introducers, relay=relay,
                                                               secret=presence.secret)

    def relay_delay(self, presence):
        """Seconds of direct paths and hole punching before the relay joins in."""
        ours, theirs = self.votes.nat_class(), presence.nat
        if ours == RANDOM and theirs == RANDOM:
            return 0.0
        if ours == CONSISTENT and theirs == CONSISTENT:
            return self._punch_grace
        return self._relay_soon

    def reach(self, peer_key, presence, offer_direct=True):
        """Race the contact's direct paths against the relay, which starts after the
        grace period; `offer_direct=False` when the caller has just offered them."""
        self._records[peer_key] = presence
        if self.whereabouts is not None:
            self.whereabouts.record(peer_key, presence)
        def direct():
            if offer_direct:
                self._offer(peer_key, self.paths(peer_key, presence))
            return self._connected(peer_key)

        def relayed():
            self._offer(peer_key, self.paths(peer_key, presence, relay=True))
            return self._connected(peer_key)

        old = self._races.pop(peer_key, None)
        if old is not None:
            old.cancel()
        d = self._races[peer_key] = race(self._clock, [(0, direct), (self.relay_delay(presence), relayed)])
        d.addErrback(lambda f: f.trap(defer.CancelledError))
        d.addBoth(self._race_over, peer_key, d)

    def _race_over(self, _, peer_key, d):
        if self._races.get(peer_key) is d:
            del self._races[peer_key]

    def session_ready(self, peer_key):
        """A session with the peer is up: the race for it is won; if relayed, try going direct."""
        for d in self._waiting.pop(peer_key, []):
            if not d.called:  # the first to fire wins the race, which cancels the other's wait
                d.callback(None)
        self._stop_probing(peer_key)
        route = self._route_of(peer_key)
        if self.route_kind(route) == "relayed":
            self._probe_direct(peer_key, list(PROBES_AFTER))
        elif isinstance(route, tuple) and self.whereabouts is not None:
            self.whereabouts.session_at(peer_key, route)

    def _probe_direct(self, peer_key, left):
        """Send a probe to the contact's direct addresses now and at each of `left` (seconds
        since the session came up), while the session stays relayed."""
        record = self._record_of(peer_key)
        addrs = [a for a in record.addrs if isinstance(a, tuple)] if record is not None else []
        if not addrs or self.route_kind_of(peer_key) != "relayed":
            self._probing.pop(peer_key, None)
            return
        now, *later = left
        timer = None
        if later:
            timer = self._clock.callLater(later[0] - now, self._probe_direct, peer_key, later)
        self._probing[peer_key] = timer
        if not self._probe(peer_key, addrs):  # the session went away meanwhile
            self._stop_probing(peer_key)

    def _record_of(self, peer_key):
        """The newest record we reached the contact by, else the one we remember."""
        if peer_key in self._records:
            return self._records[peer_key]
        return self.whereabouts.get(peer_key) if self.whereabouts is not None else None

    def forget(self, peer_key):
        """No longer a contact: stop racing and probing for it, and forget where it was."""
        old = self._races.pop(peer_key, None)
        if old is not None:
            old.cancel()
        self._stop_probing(peer_key)
        self._records.pop(peer_key, None)
        for d in self._waiting.pop(peer_key, []):
            d.cancel()
        if self.whereabouts is not None:
            self.whereabouts.forget(peer_key)

    def route_kind_of(self, peer_key):
        """`route_kind` of the session with the peer now (None without one)."""
        return self.route_kind(self._route_of(peer_key))

    def _stop_probing(self, peer_key):
        cancel(self._probing.pop(peer_key, None))

    def _connected(self, peer_key):
        if self._has_session(peer_key):
            return defer.succeed(None)
        d = defer.Deferred(lambda d: self._stop_waiting(peer_key, d))
        self._waiting.setdefault(peer_key, []).append(d)
        return d

    def _stop_waiting(self, peer_key, d):
        waiters = self._waiting.get(peer_key, [])
        if d in waiters:  # not if session_ready has taken the list already
            waiters.remove(d)
        if not waiters:
            self._waiting.pop(peer_key, None)

    @staticmethod
    def route_kind(address):
        """How a session at `address` reaches its peer: relayed, direct, or None without one."""
        if address is None:
            return None
        return "relayed" if isinstance(address, RelayRoute) else "direct"


def lan_address(bound, toward):
    """Our address on the way to `toward` (no packet is sent), or the bound one if specific."""
    host, port = bound
    if host != "0.0.0.0":
        return host, port
    if toward is None:
        return None
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(toward)
        return probe.getsockname()[0], port
    except OSError:
        return None
    finally:
        probe.close()
