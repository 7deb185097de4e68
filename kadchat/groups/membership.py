"""A group's id and its signed membership log.

Entry (all fields fixed size, big-endian; the signature covers everything before it,
after the domain prefix):

    group id 16 | index 2 | prev 16 | action 1 | subject 32 | admin 1 | cut 4 | name length 1
    | name | signer 32 | signature 64

Entry 0 is CREATE: subject = signer = the creator (the first admin), `prev` a random
nonce, and the group id is blake2b(creator | nonce)[:16], so the id names its creator.
Every later entry's `prev` is the hash of the one before (the log is a chain: no entry
can be left out or reordered) and is ADD (signed by an admin) or REMOVE (signed by an
admin, or by the subject itself: leaving). A REMOVE's `cut` is the highest seq of the
subject's messages that stays valid (what the remover held): a removed member who never
hears of it cannot go on writing under their old membership. A log is only ever
extended with entries that verify against the state the log before them gives.
"""

import os
import struct
from dataclasses import dataclass
from hashlib import blake2b

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

GROUP_ID_SIZE = 16
KEY_SIZE = 32
SIGNATURE_SIZE = 64
MAX_NAME_BYTES = 32
MAX_MEMBERS = 100  # the hard limit on a group's size
MAX_ENTRIES = 1000  # adds and removes over a group's life
CREATE, ADD, REMOVE = 1, 2, 3
_DOMAIN = b"kadchat-group-entry"
_HEAD = struct.Struct(f">{GROUP_ID_SIZE}sH16sB{KEY_SIZE}sBIB")


class LogError(ValueError):
    """An entry that does not verify or does not fit the log."""


@dataclass(frozen=True)
class Entry:
    group_id: bytes
    index: int
    prev: bytes
    action: int
    subject: bytes
    admin: bool
    cut: int  # REMOVE: the subject's last valid seq; 0 otherwise
    name: str
    signer: bytes
    signature: bytes = b""

    def body(self):
        name = self.name.encode("utf-8")
        return _HEAD.pack(self.group_id, self.index, self.prev, self.action, self.subject,
                          int(self.admin), self.cut, len(name)) + name + self.signer

    def encode(self):
        return self.body() + self.signature

    def digest(self):
        return blake2b(self.encode(), digest_size=16).digest()


def decode_entry(data):
    if len(data) < _HEAD.size:
        raise LogError("short entry")
    group_id, index, prev, action, subject, admin, cut, name_length = _HEAD.unpack_from(data)
    end = _HEAD.size + name_length
    if name_length > MAX_NAME_BYTES or len(data) != end + KEY_SIZE + SIGNATURE_SIZE or admin > 1:
        raise LogError("entry size")
    try:
        name = data[_HEAD.size:end].decode("utf-8")
    except UnicodeDecodeError:
        raise LogError("entry name") from None
    return Entry(group_id, index, prev, action, subject, bool(admin), cut, name,
                 bytes(data[end:end + KEY_SIZE]), bytes(data[end + KEY_SIZE:]))


def group_id_of(creator, nonce):
    return blake2b(creator + nonce, digest_size=GROUP_ID_SIZE).digest()


def _signed(entry, signing_key):
    signature = signing_key.sign(_DOMAIN + entry.body()).signature
    return Entry(**{**entry.__dict__, "signature": signature})


@dataclass(frozen=True)
class Member:
    slot: int  # index of the entry that added them: their number in sync summaries
    name: str  # as the admin who added them called them
    admin: bool


class MembershipLog:
    """The verified entries of one group and the membership they add up to."""

    def __init__(self, group_id):
        self.group_id = group_id
        self.entries = []
        self.members = {}  # key -> Member, current members
        self.slots = {}  # slot -> key, everyone ever added (their past messages stay valid)
        self.cuts = {}  # key -> last valid seq, of the members removed (and not added again)

    @classmethod
    def create(cls, signing_key, title):
        creator = bytes(signing_key.verify_key)
        nonce = os.urandom(16)
        log = cls(group_id_of(creator, nonce))
        log.append(_signed(Entry(log.group_id, 0, nonce, CREATE, creator, True, 0, title, creator),
                           signing_key))
        return log

    @classmethod
    def from_entries(cls, group_id, entries):
        log = cls(group_id)
        for entry in entries:
            log.append(entry)
        return log

    def __len__(self):
        return len(self.entries)

    def sign(self, signing_key, action, subject, name="", admin=False, cut=0):
        """A new entry of ours, verified and appended; returns it."""
        entry = _signed(Entry(self.group_id, len(self.entries), self.entries[-1].digest(), action, subject, admin,
                              cut, name, bytes(signing_key.verify_key)), signing_key)
        self.append(entry)
        return entry

    def append(self, entry):
        self.check(entry)
        self.entries.append(entry)
        if entry.action == REMOVE:
            del self.members[entry.subject]
            self.cuts[entry.subject] = entry.cut
        else:
            self.members[entry.subject] = Member(entry.index, entry.name, entry.admin)
            self.slots[entry.index] = entry.subject
            self.cuts.pop(entry.subject, None)

    def check(self, entry):
        """Raises LogError unless `entry` is the valid next entry of this log."""
        if entry.group_id != self.group_id or entry.index != len(self.entries):
            raise LogError("not the next entry of this group")
        if len(self.entries) >= MAX_ENTRIES:
            raise LogError("log full")
        try:
            VerifyKey(entry.signer).verify(_DOMAIN + entry.body(), entry.signature)
        except (BadSignatureError, ValueError):
            raise LogError("bad signature") from None
        if entry.index == 0:
            if entry.action != CREATE or entry.subject != entry.signer or group_id_of(entry.signer, entry.prev) != self.group_id:
                raise LogError("not this group's creation")
            return
        if entry.prev != self.entries[-1].digest():
            raise LogError("does not follow the previous entry")
        signer = self.members.get(entry.signer)
        if entry.action == ADD:
            if signer is None or not signer.admin:
                raise LogError("added by a non-admin")
            if entry.subject in self.members:
                raise LogError("already a member")
            if len(self.members) >= MAX_MEMBERS:
                raise LogError(f"a group has at most {MAX_MEMBERS} members")
        elif entry.action == REMOVE:
            if entry.subject not in self.members:
                raise LogError("not a member")
            if signer is None or not (signer.admin or entry.subject == entry.signer):
                raise LogError("removed by a non-admin")
        else:
            raise LogError("unknown action")

    def was_member(self, key, epoch):
        """`key` was a member once the first `epoch` entries were in."""
        last = next((e for e in reversed(self.entries[:epoch]) if e.subject == key), None)
        return last is not None and last.action != REMOVE

    @property
    def title(self):
        return self.entries[0].name
