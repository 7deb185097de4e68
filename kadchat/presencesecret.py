"""Presence secrets (presence-secrets.json): ours, and the one each contact gave us.

Our secret S, with our card and the epoch, locates and opens our presence
record and makes our rendezvous tag (kadchat.blinding, kadchat.presence,
kadchat.nat.regproof). Accepted contacts get it over the session (a SECRET
record, kadchat.wire) each time one comes up; when a contact is removed or
blocked we draw a new one, so what they hold stops working, and the others
get the new one at once if connected, else on their next handshake: their
look-up with the old secret finds nothing, they fall back to our request
point, and the session that comes of it hands them the new secret. Contacts
without a session get it in a SECRET dead drop (kadchat.deaddrop,
kadchat.mailbox) until they hold it: so two people who have just added each
other meet without introducers. The file holds secrets as hex (and who holds
our current one, and how new each of theirs is), rewritten atomically, private
like the whole data dir.

How new: ours is dated when drawn (`own_made_us`, which a SECRET drop carries);
one of theirs by the drop's date, or, over a session, by when it came (a
session hands the current one). A dropped secret older than the one we hold is
refused: a drop read late must not undo a rotation a session already told us
of. (The two dates are of two clocks: within the clock skew, an old drop read
just after a session's rotation could still win; the next session mends it.)
"""

import json
import os
import time

from kadchat.blinding import SECRET_BYTES
from kadchat.cards import decode_card, encode_card
from kadchat.errors import UserError
from kadchat.files import atomic_write

SECRETS_FILE = "presence-secrets.json"


class NoSecrets:
    """What parts built without secrets see: every record and tag is a request point's."""

    own = b""
    own_made_us = 0

    @staticmethod
    def of(public_key):
        return b""

    @staticmethod
    def holds_ours(public_key):
        return True  # nothing to hand anyone


class PresenceSecrets:
    def __init__(self, path, random_bytes=os.urandom, now=time.time):
        self._path = path
        self._random = random_bytes
        self._now = now
        self.own = b""
        self.own_made_us = 0  # when ours was drawn, unix microseconds
        self._theirs = {}  # contact's public key -> the secret it gave us
        self._since = {}  # contact's public key -> how new that secret is, unix microseconds
        self._holding = set()  # contacts that hold our current secret (a session or a drop's ACK)

    def load(self):
        """Read the file, or start one with a new secret of ours; returns one-line problems."""
        try:
            with open(self._path, "rb") as f:
                data = json.loads(f.read().decode("utf-8"))
            own = bytes.fromhex(data["own"])
            theirs = {decode_card(card): bytes.fromhex(s) for card, s in data["contacts"].items()}
            if len(own) != SECRET_BYTES or any(len(s) != SECRET_BYTES for s in theirs.values()):
                raise ValueError("a secret of the wrong size")
            # Files from before SECRET drops: ours counts as drawn now, nobody is known to hold it.
            made = int(data.get("own_made_us", self._now() * 1e6))
            since = {decode_card(card): int(us) for card, us in data.get("since", {}).items()}
            holding = {decode_card(card) for card in data.get("holding", [])}
            self.own, self.own_made_us, self._theirs = own, made, theirs
            self._since, self._holding = since, holding
            return []
        except FileNotFoundError:
            problems = []
        except (OSError, ValueError, KeyError, TypeError, AttributeError, UserError) as e:
            problems = [f"{self._path}: unreadable ({e}); a new presence secret is made, contacts get it "
                        "on their next handshake"]
        self._draw()
        self._save()
        return problems

    def of(self, public_key):
        """The secret `public_key` gave us, b"" if none (then only its request point is found)."""
        return self._theirs.get(public_key, b"")

    def received(self, public_key, secret, made_us=None):
        """A contact gave us its secret, over a session (`made_us` None: the current one,
        now) or in a drop (drawn at `made_us`); True if we keep it as new."""
        if len(secret) != SECRET_BYTES or self._theirs.get(public_key) == secret:
            return False
        if made_us is None:
            made_us = int(self._now() * 1e6)
        elif made_us <= self._since.get(public_key, -1):
            return False  # older than the one we hold
        self._theirs[public_key] = secret
        self._since[public_key] = made_us
        self._save()
        return True

    def holds_ours(self, public_key):
        """Whether the contact is known to hold our current secret."""
        return public_key in self._holding

    def handed(self, public_key):
        """The contact now holds our current secret (a session sent it, or it acknowledged our drop)."""
        if public_key not in self._holding:
            self._holding.add(public_key)
            self._save()

    def rotate(self, forgetting=None):
        """A new secret of ours (and, given `forgetting`, that contact's dropped); returns the old one."""
        self._theirs.pop(forgetting, None)
        self._since.pop(forgetting, None)
        old = self.own
        self._draw()
        self._save()
        return old

    def _draw(self):
        self.own, self.own_made_us = self._random(SECRET_BYTES), int(self._now() * 1e6)
        self._holding = set()  # nobody holds the new one yet

    def _save(self):
        data = {"own": self.own.hex(), "own_made_us": self.own_made_us,
                "contacts": {encode_card(k): s.hex() for k, s in self._theirs.items()},
                "since": {encode_card(k): us for k, us in self._since.items()},
                "holding": sorted(encode_card(k) for k in self._holding)}
        atomic_write(self._path, json.dumps(data, indent=1).encode("utf-8"))
