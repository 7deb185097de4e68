"""The cards the user blocked (blocked.txt): nothing from them reaches us again.

Blocking is local and silent: a blocked card's handshakes and contact requests
are dropped as soon as its identity is known (one DH and one AEAD open, as for
any stranger), without an answer. The file is one card per line and the name
it had, rewritten atomically; the user may edit it (delete a line to unblock).
"""

from kadchat.cards import decode_card, encode_card
from kadchat.errors import UserError
from kadchat.files import atomic_write, parse_cards, validate_name

BLOCKED_FILE = "blocked.txt"
_HEADER = "# Cards you blocked, with the name they had. Delete a line to unblock.\n"


class BlockList:
    def __init__(self, path):
        self._path = path
        self._keys = set()

    def load(self):
        """Read the file; returns one-line problems (bad lines are skipped, and kept in the file)."""
        keys, problems = parse_cards(self._path)
        self._keys = set(keys)
        return problems

    def is_blocked(self, public_key):
        return public_key in self._keys

    def block(self, public_key, name=""):
        """Add the card (with `name` for the user's eyes); OSError if the file cannot be written."""
        if public_key in self._keys:
            return
        try:
            with open(self._path, "rb") as f:
                old = f.read()
        except FileNotFoundError:
            old = _HEADER.encode()
        if old and not old.endswith(b"\n"):
            old += b"\n"
        line = f"{encode_card(public_key)} {validate_name(name) if name.strip() else ''}".rstrip() + "\n"
        atomic_write(self._path, old + line.encode("utf-8"))
        self._keys.add(public_key)

    def unblock(self, public_key):
        """Drop the card's lines from the file, keeping the others byte for byte."""
        with open(self._path, "rb") as f:
            lines = f.read().split(b"\n")
        kept = [line for line in lines if _card_of(line) != public_key]
        atomic_write(self._path, b"\n".join(kept))
        self._keys.discard(public_key)


def _card_of(line):
    try:
        return decode_card(line.decode("utf-8").split()[0])
    except (UnicodeDecodeError, IndexError, UserError):
        return None
