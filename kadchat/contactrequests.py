"""Contact requests waiting for the user's answer (requests.json), and their rate limits.

Someone who has our card but is not a contact can ask to become one
(kadchat.requestwire carries the ask). What a stranger can make us keep is
bounded: at most MAX_PENDING requests, one per card, and PER_HOUR asks an
hour per source (their card, and the IP address it came from), remembered for
at most SOURCES_KEPT sources. Pending requests survive a restart: nothing the
user received is lost.
"""

import json
import unicodedata
from collections import OrderedDict

from kadchat.cards import decode_card, encode_card
from kadchat.errors import UserError
from kadchat.files import CONTROL_CATEGORIES, MAX_NAME_CHARS, atomic_write, validate_name
from kadchat.model import ContactRequest

REQUESTS_FILE = "requests.json"
MAX_PENDING = 50
PER_HOUR = 3
SOURCES_KEPT = 4096
HOUR = 3600.0


class PendingRequests:
    def __init__(self, path, clock, name_taken):
        """`name_taken(name)`: whether a contact has that name (case-insensitively)."""
        self._path = path
        self._clock = clock
        self._name_taken = name_taken
        self._pending = {}  # public key -> ContactRequest, oldest first
        self._asks = OrderedDict()  # source -> times of its recent asks, least recent source first

    def load(self):
        """Read the file; returns one-line problems."""
        try:
            with open(self._path, "rb") as f:
                rows = json.loads(f.read().decode("utf-8"))
            for row in rows:
                self._pending[decode_card(row["card"])] = ContactRequest(
                    row["name"], row["card"], row["note"], float(row["received"]))
        except FileNotFoundError:
            return []
        except (OSError, ValueError, KeyError, TypeError, UserError) as e:
            return [f"{self._path}: unreadable, pending contact requests lost: {e}"]
        return []

    def all(self):
        return list(self._pending.values())

    def offer(self, public_key, name, note, source_ip):
        """A new ask; returns the ContactRequest to show, or None (already pending, too many, too often)."""
        if public_key in self._pending or len(self._pending) >= MAX_PENDING:
            return None
        if not all(self._spend(source) for source in (public_key, source_ip)):
            return None
        note = "".join(c for c in note if unicodedata.category(c) not in CONTROL_CATEGORIES).strip()  # one line
        request = ContactRequest(self._unique(name), encode_card(public_key), note, self._clock.seconds())
        self._pending[public_key] = request
        self._save()
        return request

    def named(self, name):
        """The pending request named `name`; UserError if none."""
        for request in self._pending.values():
            if request.name == name:
                return request
        raise UserError(f"no contact request from {name!r}")

    def take(self, name):
        """Remove the request named `name`; returns (public key, ContactRequest). UserError if none."""
        request = self.named(name)
        public_key = decode_card(request.card)
        del self._pending[public_key]
        self._save()
        return public_key, request

    def drop(self, public_key):
        if self._pending.pop(public_key, None) is not None:
            self._save()

    def _spend(self, source):
        now = self._clock.seconds()
        times = [t for t in self._asks.pop(source, []) if t > now - HOUR]
        allowed = len(times) < PER_HOUR
        self._asks[source] = times + [now] if allowed else times
        while len(self._asks) > SOURCES_KEPT:
            self._asks.popitem(last=False)
        return allowed

    def _unique(self, name):
        try:
            base = validate_name(name)[:MAX_NAME_CHARS - 5]  # room for " (99)"
        except UserError:
            base = "someone"
        taken = {r.name.lower() for r in self._pending.values()}
        candidate, n = base, 2
        while candidate.lower() in taken or self._name_taken(candidate):
            candidate, n = f"{base} ({n})", n + 1
        return candidate

    def _save(self):
        rows = [{"card": r.card, "name": r.name, "note": r.note, "received": r.received}
                for r in self._pending.values()]
        atomic_write(self._path, json.dumps(rows, ensure_ascii=False, indent=1).encode("utf-8"))
