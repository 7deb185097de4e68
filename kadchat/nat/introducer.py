"""The introducer: what a node does for clients behind NAT (DESIGN.md "Direct chat").

Clients register a tag with it every ~20 s, which keeps their NAT mapping
open and tells the introducer where the tag is reachable now. A caller asks it
to pass a handshake initiation to a tag (the callee then answers the caller
directly, punching its own NAT); when that cannot work, it relays sealed
datagrams between two registered tags, within a byte and time budget per pair
and a byte budget per sending IP. It only ever sees ciphertext.

A registration proves ownership of its tag (kadchat.nat.regproof), so a
stranger who knows a client's card cannot take its introductions.

Everything here is fed by strangers, so everything is bounded: registrations
in total, per IP (a household behind one NAT shares an IP) and per network
(/24 for IPv4, /48 for IPv6: addresses come cheap within one), relay budgets
per pair and per IP. A full table makes room by dropping its stalest
registration: live clients refresh every ~20 s, so to push one out an attacker
must outpace all of them from many networks at once.
"""

import ipaddress
from collections import Counter, OrderedDict

from twisted.logger import Logger

from kadchat.nat import natwire, regproof
from kademlia.tokens import TokenManager


class RelayBudget:
    """Bytes and duration one (from, to) pair may use the relay for, and bytes one
    sending IP may have relayed per `max_seconds`."""

    def __init__(self, max_bytes=8 * 1024 * 1024, max_seconds=3600, max_bytes_per_ip=64 * 1024 * 1024):
        self.max_bytes = max_bytes
        self.max_seconds = max_seconds
        self.max_bytes_per_ip = max_bytes_per_ip


class Introducer:
    log = Logger()

    def __init__(self, clock, send, registration_ttl=90, max_registrations=10_000, max_per_ip=32,
                 max_per_network=128, budget=None):
        self._clock = clock
        self._send = send
        self.registration_ttl = registration_ttl
        self.max_registrations = max_registrations
        self.max_per_ip = max_per_ip
        self.max_per_network = max_per_network
        self.budget = budget or RelayBudget()
        self._registrations = OrderedDict()  # tag -> (address, expires), least recently refreshed first
        self._counts = Counter()  # an IP, or its network -> tags registered from it
        self._relay_use = {}  # (from tag, to tag) -> [bytes, first use]
        self._ip_use = {}  # sending ip -> [bytes, window start]
        self._cookies = TokenManager(clock.seconds, rotate_after=300)
        self.stats = {"introduced": 0, "relayed_bytes": 0, "refused": 0, "evicted": 0, "bad_proof": 0}

    def handle(self, message, address):
        if isinstance(message, natwire.Register):
            self._register(message, address)
        elif isinstance(message, natwire.Introduce):
            self._introduce(message, address)
        elif isinstance(message, natwire.Relay):
            self._relay(message, address)

    def _register(self, register, address):
        self._expire()
        tag = register.tag
        expected = self._cookies.issue(_address_key(address))
        if not self._cookies.is_valid(_address_key(address), register.cookie):
            # First contact, or a spoofed source: the cookie goes to the address
            # itself, and only whoever receives there can register with it.
            self._send(natwire.encode(natwire.Registered(tag, address, expected)), address)
            return
        known = self._registrations.get(tag)
        if known is None or known[0][0] != address[0]:  # a keep-alive is never refused
            ip, network = _sources(address)
            if self._counts[ip] >= self.max_per_ip or self._counts[network] >= self.max_per_network:
                self.stats["refused"] += 1
                return
        if known is None or known[0] != address:
            # Checked last, being the costly part; a keep-alive from the
            # registered address was proven when it registered.
            if not regproof.is_owner(register):
                self.stats["bad_proof"] += 1
                return
            if known is None and len(self._registrations) >= self.max_registrations:
                self._forget(next(iter(self._registrations)))
                self.stats["evicted"] += 1
        self._forget(tag)
        self._registrations[tag] = (address, self._clock.seconds() + self.registration_ttl)
        self._counts.update(_sources(address))
        self._send(natwire.encode(natwire.Registered(tag, address, expected)), address)

    def _forget(self, tag):
        entry = self._registrations.pop(tag, None)
        if entry is not None:
            for source in _sources(entry[0]):
                self._counts[source] -= 1
                if not self._counts[source]:
                    del self._counts[source]

    def _expire(self):
        now = self._clock.seconds()
        expired = False
        while self._registrations:
            tag, (_, expires) = next(iter(self._registrations.items()))
            if expires > now:
                break
            self._forget(tag)
            expired = True
        if expired:  # forget the budgets of pairs that are gone, and of spent windows
            live = self._registrations
            self._relay_use = {p: u for p, u in self._relay_use.items() if p[0] in live and p[1] in live}
            self._ip_use = {ip: u for ip, u in self._ip_use.items() if now - u[1] <= self.budget.max_seconds}

    @property
    def registered(self):
        """How many tags are registered now."""
        self._expire()
        return len(self._registrations)

    def address_of(self, tag):
        entry = self._registrations.get(tag)
        if entry is None or entry[1] <= self._clock.seconds():
            return None
        return entry[0]

    def _introduce(self, message, caller):
        callee = self.address_of(message.callee_tag)
        if callee is None:
            self.stats["refused"] += 1
            return
        self.stats["introduced"] += 1
        self._send(natwire.encode(natwire.Introduction(caller, message.payload)), callee)

    def _relay(self, message, sender):
        # Only a registered tag may relay, and only from its registered address:
        # nobody can make the relay send in someone else's name.
        if self.address_of(message.from_tag) != sender:
            self.stats["refused"] += 1
            return
        destination = self.address_of(message.to_tag)
        if destination is None or not self._spend(sender[0], message.from_tag, message.to_tag, len(message.payload)):
            self.stats["refused"] += 1
            return
        self.stats["relayed_bytes"] += len(message.payload)
        self._send(natwire.encode(natwire.Relayed(message.from_tag, message.payload)), destination)

    def _spend(self, sender_ip, from_tag, to_tag, size):
        now = self._clock.seconds()
        pair = (from_tag, to_tag)
        if pair not in self._relay_use and len(self._relay_use) >= 4 * self.max_registrations:
            return False
        use = self._relay_use.setdefault(pair, [0, now])
        ip_use = self._ip_use.setdefault(sender_ip, [0, now])
        if now - ip_use[1] > self.budget.max_seconds:
            ip_use[:] = [0, now]  # a new window for this IP
        if (now - use[1] > self.budget.max_seconds or use[0] + size > self.budget.max_bytes
                or ip_use[0] + size > self.budget.max_bytes_per_ip):
            return False
        use[0] += size
        ip_use[0] += size
        return True


def _sources(address):
    """What a registration counts against: its IP, and the IP's /24 (IPv4) or /48 (IPv6)."""
    ip = ipaddress.ip_address(address[0])
    network = ipaddress.ip_network(f"{ip}/{24 if ip.version == 4 else 48}", strict=False)
    return str(ip), str(network)


def _address_key(address):
    """What a cookie is bound to: the full address, since NATs share IPs."""
    return f"{address[0]}:{address[1]}"
