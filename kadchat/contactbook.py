"""The contact book: who our contacts are (contacts.txt), and what the UIs count about them.

Names are the user's own and unique (compared case-insensitively, as a user
reads them); keys are unique too. Unread counts and last-seen times live in
memory: they describe this run. Renaming, removing and blocking belong here.
"""

from kadchat.cards import decode_card, encode_card
from kadchat.errors import UserError
from kadchat.files import append_contact, parse_contacts, rewrite_contact, validate_name

CONTACTS_FILE = "contacts.txt"


class ContactBook:
    def __init__(self, path, own_key):
        self._path = path
        self._own_key = own_key
        self._keys = {}  # name -> public key
        self._names = {}  # public key -> name
        self._unread = {}
        self._last_seen = {}

    def load(self):
        """Read the contacts file; returns one-line problems (bad lines are skipped)."""
        entries, problems = parse_contacts(self._path)
        for entry in entries:
            if entry.public_key == self._own_key:
                problems.append(f"{CONTACTS_FILE}:{entry.line}: that is your own card; skipped")
                continue
            self._remember(entry.name, entry.public_key)
        return problems

    def add(self, card_text, name):
        """Add a contact from its card text; returns (name, public key). UserError if it can't be."""
        public_key = decode_card(card_text)
        name = validate_name(name)
        if public_key == self._own_key:
            raise UserError("that is your own card")
        if public_key in self._names:
            raise UserError(f"that card is already your contact {self._names[public_key]!r}")
        if self.has_name(name):
            raise UserError(f"you already have a contact named {name!r}")
        append_contact(self._path, encode_card(public_key), name)
        self._remember(name, public_key)
        return name, public_key

    def rename(self, name, new_name):
        """Give contact `name` the name `new_name` (in the file too); returns it. UserError if it can't be."""
        public_key = self.key_of(name)
        new_name = validate_name(new_name)
        if new_name.lower() != name.lower() and self.has_name(new_name):
            raise UserError(f"you already have a contact named {new_name!r}")
        rewrite_contact(self._path, public_key, new_name)
        self._forget(name)
        self._remember(new_name, public_key)
        for counts in (self._unread, self._last_seen):
            if name in counts:
                counts[new_name] = counts.pop(name)
        return new_name

    def remove(self, name):
        """Remove contact `name` (its line in the file too); returns its public key."""
        public_key = self.key_of(name)
        rewrite_contact(self._path, public_key, None)
        self._forget(name)
        self._unread.pop(name, None)
        self._last_seen.pop(name, None)
        return public_key

    def _forget(self, name):
        del self._names[self._keys.pop(name)]

    def _remember(self, name, public_key):
        self._keys[name] = public_key
        self._names[public_key] = name

    # -- looking up ----------------------------------------------------------

    def names(self):
        """Every contact's name, in the order a user reads a list."""
        return sorted(self._keys, key=str.lower)

    def items(self):
        """(name, public key) of every contact."""
        return list(self._keys.items())

    def keys(self):
        return self._names.keys()

    def is_contact(self, public_key):
        return public_key in self._names

    def key_of(self, name):
        """The contact's public key; UserError for a name that is not a contact's."""
        try:
            return self._keys[name]
        except KeyError:
            raise UserError(f"no contact named {name!r}") from None

    def has(self, name):
        return name in self._keys

    def has_name(self, name):
        """Whether a contact has that name, compared as a user reads it (case-insensitively)."""
        return name.lower() in (n.lower() for n in self._keys)

    def name_of(self, public_key):
        """The contact's name, or None for a key that is not (or no longer) a contact."""
        return self._names.get(public_key)

    # -- what the UIs count ----------------------------------------------------

    def count_unread(self, name):
        self._unread[name] = self._unread.get(name, 0) + 1

    def mark_read(self, name):
        self._unread[name] = 0

    def unread(self, name):
        return self._unread.get(name, 0)

    def seen(self, name, when):
        """A sign of life at `when`; an older one (a stale record) never moves "last seen" back."""
        self._last_seen[name] = max(when, self._last_seen.get(name, when))

    def last_seen(self, name):
        return self._last_seen.get(name)
