"""The introducer: what a node does for clients behind NAT (DESIGN.md "Direct chat").

Clients register a tag with it every ~20 s, which keeps their NAT mapping
open and tells the introducer where the tag is reachable now. A caller asks it
to pass a handshake initiation to a tag (the callee then answers the caller
directly, punching its own NAT); when that cannot work, it relays sealed
datagrams between two registered tags, within a byte and time budget per pair.
It only ever sees ciphertext.
"""

from collections import OrderedDict

from twisted.logger import Logger

from kadchat import natwire


class RelayBudget:
    """Bytes and duration one (from, to) pair may use the relay for."""

    def __init__(self, max_bytes=8 * 1024 * 1024, max_seconds=3600):
        self.max_bytes = max_bytes
        self.max_seconds = max_seconds


class Introducer:
    log = Logger()

    def __init__(self, clock, send, registration_ttl=90, max_registrations=10_000, budget=None):
        self._clock = clock
        self._send = send
        self.registration_ttl = registration_ttl
        self.max_registrations = max_registrations
        self.budget = budget or RelayBudget()
        self._registrations = OrderedDict()  # tag -> (address, expires), oldest first
        self._relay_use = {}  # (from tag, to tag) -> [bytes, first use]
        self.stats = {"introduced": 0, "relayed_bytes": 0, "refused": 0}

    def handle(self, message, address):
        if isinstance(message, natwire.Register):
            self._register(message.tag, address)
        elif isinstance(message, natwire.Introduce):
            self._introduce(message, address)
        elif isinstance(message, natwire.Relay):
            self._relay(message, address)

    def _register(self, tag, address):
        self._expire()
        if tag not in self._registrations and len(self._registrations) >= self.max_registrations:
            self.stats["refused"] += 1
            return
        self._registrations.pop(tag, None)
        self._registrations[tag] = (address, self._clock.seconds() + self.registration_ttl)
        self._send(natwire.encode(natwire.Registered(tag, address)), address)

    def _expire(self):
        now = self._clock.seconds()
        expired = False
        while self._registrations:
            tag, (_, expires) = next(iter(self._registrations.items()))
            if expires > now:
                break
            del self._registrations[tag]
            expired = True
        if expired:  # forget the relay budgets of pairs that are gone
            live = self._registrations
            self._relay_use = {p: u for p, u in self._relay_use.items() if p[0] in live and p[1] in live}

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
        if destination is None or not self._spend(message.from_tag, message.to_tag, len(message.payload)):
            self.stats["refused"] += 1
            return
        self.stats["relayed_bytes"] += len(message.payload)
        self._send(natwire.encode(natwire.Relayed(message.from_tag, message.payload)), destination)

    def _spend(self, from_tag, to_tag, size):
        now = self._clock.seconds()
        use = self._relay_use.setdefault((from_tag, to_tag), [0, now])
        if now - use[1] > self.budget.max_seconds or use[0] + size > self.budget.max_bytes:
            return False
        use[0] += size
        return True
