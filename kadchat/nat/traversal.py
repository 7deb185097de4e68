"""The client side of NAT traversal: rendezvous tags, introductions and relay routes.

A client is known to introducers by a *tag*, derived from its blinded key for
the epoch and its presence secret like its presence record
(kadchat.nat.regproof): contacts can compute it from the card and the secret
we gave them, nobody else can, and one epoch's tag says nothing about the
next. It registers its *request tag* too (the empty secret's, which the card
alone gives), through which strangers' contact requests and the handshakes
of contacts without our current secret reach it. Only the owner can sign its registrations. The client
registers its current tag with its introducers every ~20 s, which also keeps
its NAT mapping to them open; in the last `lead` seconds of an epoch, the
next epoch's tag too, on a schedule of its own (a random phase, never in the
same burst), so that registrations do not come in pairs. They still come
from the same address: an introducer sees the two tags of one address for
those seconds (docs/privacy.md).

The session layer sees two kinds of virtual address next to plain `(host, port)`
ones; `send` turns them into NAT datagrams:
- `IntroductionRoute(introducer, peer, skew)`: the handshake initiation goes to
  the introducer, which hands it to the callee together with our address as it
  saw it; the callee answers us directly, which opens its own NAT (hole punching).
- `RelayRoute(introducer, peer, skew)`: everything goes through the introducer,
  which sees only sealed datagrams. The last resort.
A route names the peer, not a tag: `send` uses the peer's tag for the epoch
at the time of sending (ours plus `skew`, the peer's clock being up to an epoch
off), because a session outlives epochs and introducers forget old tags.
"""

import random
from collections import OrderedDict
from dataclasses import dataclass, field

from twisted.logger import Logger

from kadchat import requestwire, wire
from kadchat.nat import natwire, regproof
from kadchat.nat.regproof import rendezvous_tag
from kadchat.presencesecret import NoSecrets
from kademlia.timers import Loop, cancel

_INTRODUCED = (bytes([wire.INITIATION]), bytes([requestwire.REQUEST]))  # all an introducer passes on


# Dataclasses, not NamedTuples: routes are dict keys and list members next to
# each other, and two NamedTuples with equal fields compare (and hash) equal
# whatever their class, so a relay route vanished as a "duplicate" of the
# introduction route to the same peer.
@dataclass(frozen=True)
class IntroductionRoute:
    introducer: tuple
    peer: bytes  # the peer's identity key
    skew: int = 0  # the peer's epoch minus ours
    secret: bytes = field(default=b"", repr=False)  # the peer's presence secret (b"": its request tag)


@dataclass(frozen=True)
class RelayRoute:
    introducer: tuple
    peer: bytes
    skew: int = 0
    secret: bytes = field(default=b"", repr=False)


__all__ = ["IntroductionRoute", "RelayRoute", "Traversal", "rendezvous_tag"]

# Contacts' introducers we register with so that their relays serve us: a
# contact must not be able to make us keep registrations with ever more of them.
MAX_EXTRA = 4
EXTRA_IDLE = 600.0  # seconds without a relayed datagram before we stop registering there
GAP = 2.0  # seconds, at least, between registrations of two epochs' tags
INTRODUCED_KEPT = 64  # callers whose introducer we remember, to call them back (kadchat.service)


class Traversal:
    log = Logger()

    def __init__(self, clock, send_raw, signing_key, epoch_seconds=300, keepalive=20.0, contacts=tuple,
                 lead=60.0, rng=None, secrets=NoSecrets):
        """`signing_key` is our identity's (it signs our registrations, blinded);
        `contacts()` gives our contacts' identity keys: relayed datagrams come
        with their sender's tag, which only a contact's key and secret explain;
        `secrets` has `own` (ours, read at each use: it rotates) and `of(key)`
        (kadchat.presencesecret)."""
        self._secrets = secrets
        self._clock = clock
        self._send_raw = send_raw
        self._signers = regproof.Signers(signing_key)
        self._public_key = bytes(signing_key.verify_key)
        self._contacts = contacts
        self._owners = (None, {})  # (epoch, {tag: (identity key, skew)}) for recent tags of contacts
        self.epoch_seconds = epoch_seconds
        self.keepalive = keepalive
        self.lead = lead
        self._rng = rng or random.SystemRandom()
        self._ahead = None  # the timer of the next epoch's registrations
        self.introducers = []  # ours, published in our presence record
        self._extra = OrderedDict()  # peers' introducers we relay through -> last use, least recent first
        self.observed = {}  # one of our introducers -> our address as it sees it
        self._cookies = {}  # introducer -> the cookie it gave us (natwire: registration)
        self._introduced = OrderedDict()  # caller address -> the introducer that last passed its handshake
        self._loop = Loop(clock, keepalive, self._register_everywhere)

    def epoch(self):
        return int(self._clock.seconds() // self.epoch_seconds)

    def own_tag(self):
        return rendezvous_tag(self._public_key, self.epoch(), self._secrets.own)

    def _own_secrets(self):
        """Whose tags we register: our secret's, and the request tag's (one if we have no secret)."""
        return list(dict.fromkeys([self._secrets.own, b""]))

    def start(self, introducers):
        self.introducers = list(introducers)
        self._loop.start(now=True)

    def stop(self):
        self._ahead = cancel(self._ahead)
        return self._loop.stop()

    def _register_everywhere(self):
        idle = [i for i, used in self._extra.items() if used < self._clock.seconds() - EXTRA_IDLE]
        for introducer in idle:
            self._drop_extra(introducer)
        for introducer in [*self.introducers, *self._extra]:
            self._register(introducer, self.epoch())
        boundary = (self.epoch() + 1) * self.epoch_seconds
        if self._ahead is None and self._clock.seconds() >= boundary - self.lead:
            # Between two keep-alive ticks, at least GAP from either.
            delay = self._rng.uniform(GAP, self.keepalive - GAP)
            self._ahead = self._clock.callLater(delay, self._register_ahead, self.epoch() + 1)

    def _register_ahead(self, epoch):
        self._ahead = None
        if epoch <= self.epoch():
            return  # it has begun: the keep-alives register its tag now
        for introducer in [*self.introducers, *self._extra]:
            self._register(introducer, epoch)
        self._ahead = self._clock.callLater(self.keepalive, self._register_ahead, epoch)

    def _use_extra(self, introducer):
        """Note a use of a contact's introducer; True if it is new to us."""
        if introducer in self.introducers:
            return False
        new = introducer not in self._extra
        self._extra[introducer] = self._clock.seconds()
        self._extra.move_to_end(introducer)
        while len(self._extra) > MAX_EXTRA:
            self._drop_extra(next(iter(self._extra)))
        return new

    def _drop_extra(self, introducer):
        del self._extra[introducer]
        self._cookies.pop(introducer, None)

    def _register(self, introducer, epoch, secrets=None):
        cookie = self._cookies.get(introducer, natwire.NO_COOKIE)
        for secret in secrets or self._own_secrets():
            register = regproof.make_register(self._signers.for_epoch(epoch, secret), cookie)
            self._send_raw(natwire.encode(register), introducer)

    def routes_to(self, peer_key, introducers, relay, secret=b""):
        """Virtual addresses for reaching `peer_key` through its introducers, to its tag
        under `secret` (b"": its request tag)."""
        routes = []
        for introducer in introducers:
            introducer = tuple(introducer)
            for skew in (0, -1):  # the peer may not have moved to this epoch's tag yet
                routes.append(IntroductionRoute(introducer, peer_key, skew, secret))
                if relay:
                    routes.append(RelayRoute(introducer, peer_key, skew, secret))
            if relay and self._use_extra(introducer):
                self._register(introducer, self.epoch())  # a relay only serves registered tags
        return routes

    def send(self, data, address):
        """The session layer's `send`: plain addresses, or the routes above."""
        if isinstance(address, (IntroductionRoute, RelayRoute)):
            try:
                tag = rendezvous_tag(address.peer, self.epoch() + address.skew, address.secret)
            except ValueError:  # not a usable key: nobody can be registered under it
                return
            if isinstance(address, RelayRoute):
                if self._use_extra(address.introducer):  # dropped while idle: register again
                    self._register(address.introducer, self.epoch())
                # From our request tag to theirs: they may not have our secret either.
                own = rendezvous_tag(self._public_key, self.epoch(), self._secrets.own if address.secret else b"")
                message = natwire.Relay(tag, own, data)
            elif data[:1] in _INTRODUCED:
                message = natwire.Introduce(tag, data)
            else:
                return
            self._send_raw(natwire.encode(message), address.introducer)
        else:
            self._send_raw(data, address)

    def handle(self, message, address):
        """A NAT datagram for us as a client; returns (chat datagram, its address) or None."""
        # Only introducers we registered with have reason to write to us: from
        # anyone else, REGISTERED could make us publish addresses of their choosing.
        if address not in self.introducers and address not in self._extra:
            return None
        if isinstance(message, natwire.Registered):
            if address in self.introducers:  # a contact's introducer must not choose what we publish
                self.observed[address] = message.observed
            if self._cookies.get(address) != message.cookie:  # first contact, or rotated
                self._cookies[address] = message.cookie
                # Again with the cookie, for the epoch of the tag it answers only (no
                # pair of epochs), both of its tags: the second answer brings the same cookie.
                answered = [epoch for epoch in (self.epoch(), self.epoch() + 1) for secret in self._own_secrets()
                            if rendezvous_tag(self._public_key, epoch, secret) == message.tag]
                for epoch in answered[:1]:
                    self._register(address, epoch)
        elif isinstance(message, natwire.Introduction):
            self._introduced[message.caller] = address
            self._introduced.move_to_end(message.caller)
            while len(self._introduced) > INTRODUCED_KEPT:
                self._introduced.popitem(last=False)
            return message.payload, message.caller
        elif isinstance(message, natwire.Relayed):
            owner = self._owner(message.from_tag)
            if owner is None:
                return None  # not a contact's: nothing from it could authenticate anyway
            self._use_extra(address)
            return message.payload, RelayRoute(address, *owner)
        return None

    def introducer_of(self, caller):
        """The introducer that last passed us a handshake from `caller`, if one did lately."""
        return self._introduced.get(caller)

    def _owner(self, tag):
        """(identity key, skew, secret) of the contact whose tag for a neighbouring epoch `tag` is."""
        epoch = self.epoch()
        cached_epoch, owners = self._owners
        if cached_epoch != epoch or tag not in owners:  # a new epoch, or maybe a new contact
            owners = {}
            for key in self._contacts():
                for skew in (-1, 0, 1):
                    try:
                        for secret in dict.fromkeys([self._secrets.of(key), b""]):
                            owners[rendezvous_tag(key, epoch + skew, secret)] = (key, skew, secret)
                    except ValueError:  # a key no one can hold
                        break
            self._owners = (epoch, owners)
        return owners.get(tag)
