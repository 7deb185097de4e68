"""Presence secrets (presence-secrets.json): ours, and the one each contact gave us.

Our secret S, with our card and the epoch, locates and opens our presence
record and makes our rendezvous tag (kadchat.blinding, kadchat.presence,
kadchat.nat.regproof). Accepted contacts get it over the session (a SECRET
record, kadchat.wire) each time one comes up; when a contact is removed or
blocked we draw a new one, so what they hold stops working, and the others
get the new one at once if connected, else on their next handshake: their
look-up with the old secret finds nothing, they fall back to our request
point, and the session that comes of it hands them the new secret. The file
holds secrets as hex, rewritten atomically, private like the whole data dir.
"""

import json
import os

from kadchat.blinding import SECRET_BYTES
from kadchat.cards import decode_card, encode_card
from kadchat.errors import UserError
from kadchat.files import atomic_write

SECRETS_FILE = "presence-secrets.json"


class NoSecrets:
    """What parts built without secrets see: every record and tag is a request point's."""

    own = b""

    @staticmethod
    def of(public_key):
        return b""


class PresenceSecrets:
    def __init__(self, path, random_bytes=os.urandom):
        self._path = path
        self._random = random_bytes
        self.own = b""
        self._theirs = {}  # contact's public key -> the secret it gave us

    def load(self):
        """Read the file, or start one with a new secret of ours; returns one-line problems."""
        try:
            with open(self._path, "rb") as f:
                data = json.loads(f.read().decode("utf-8"))
            own = bytes.fromhex(data["own"])
            theirs = {decode_card(card): bytes.fromhex(s) for card, s in data["contacts"].items()}
            if len(own) != SECRET_BYTES or any(len(s) != SECRET_BYTES for s in theirs.values()):
                raise ValueError("a secret of the wrong size")
            self.own, self._theirs = own, theirs
            return []
        except FileNotFoundError:
            problems = []
        except (OSError, ValueError, KeyError, TypeError, AttributeError, UserError) as e:
            problems = [f"{self._path}: unreadable ({e}); a new presence secret is made, contacts get it "
                        "on their next handshake"]
        self.own = self._random(SECRET_BYTES)
        self._save()
        return problems

    def of(self, public_key):
        """The secret `public_key` gave us, b"" if none (then only its request point is found)."""
        return self._theirs.get(public_key, b"")

    def received(self, public_key, secret):
        """A contact gave us its secret; True if it is new to us."""
        if len(secret) != SECRET_BYTES or self._theirs.get(public_key) == secret:
            return False
        self._theirs[public_key] = secret
        self._save()
        return True

    def rotate(self, forgetting=None):
        """A new secret of ours (and, given `forgetting`, that contact's dropped); returns the old one."""
        self._theirs.pop(forgetting, None)
        old, self.own = self.own, self._random(SECRET_BYTES)
        self._save()
        return old

    def _save(self):
        data = {"own": self.own.hex(), "contacts": {encode_card(k): s.hex() for k, s in self._theirs.items()}}
        atomic_write(self._path, json.dumps(data, indent=1).encode("utf-8"))
