"""Dead drops: sealed message fragments for an offline contact, in the DHT itself.

DESIGN.md, "Offline delivery in the DHT itself". For a pair of contacts A, B:

    shared   = X25519(A's static key, B's static key)   (ed25519 identities converted,
                                                         as kadchat.handshake does)
    dir_key  = BLAKE2b-256(key=shared, person="kadchat-drops", sender || recipient)
    position = (slot, index): slot = floor(unix_time / SLOT_SECONDS), index 0..PER_SLOT-1
    seed || aead_key = BLAKE2b-512(key=dir_key, person="kadchat-drop-pos", slot 8 || index 2)

The drop at a position is a BEP 44 mutable item signed by the ed25519 key from
`seed` (salt empty): every position has a fresh key that only A and B can
compute, so storage nodes cannot link drops to each other or to anyone, and
nobody else can fill them. Its v is nonce 24 || XChaCha20-Poly1305(aead_key,
plaintext, ad=k), the plaintext padded to PLAIN_SIZE so every drop (and every
acknowledgement) has the same length, 944 bytes bencoded:

    DATA (seq 1): kind 1 | message id 16 | seq 8 | base 8 | sent us 8 | stored us 8
                  | fragment index 2 | count 2 | length 2 | chunk | zeros
    ACK  (seq 2): kind 2 | message id 16 | fragment index 2 | count 2 | zeros
    SECRET (seq 1): kind 3 | the sender's presence secret 32 | made us 8 | zeros

A SECRET drop hands a contact our presence secret (kadchat.presencesecret)
without a session: two people who have just added each other, or a contact
offline when our secret rotated, could otherwise meet only through the
introducers our request point lists. `made us` is when the secret was drawn,
so the recipient keeps the newest. It is acknowledged like a fragment, the
ACK's message id being `secret_id(secret)`.

A message longer than one chunk takes consecutive positions (the chain: the
next fragment is always at the next position, crossing into the next slot when
a slot is full). The recipient overwrites a drop it has stored with the ACK at
seq 2: that removes the fragment and is the receipt the sender reads.
`stored us` is when the drop was made: readers ignore drops older than
RETENTION, whoever re-puts them.
"""

import os
import struct
from dataclasses import dataclass

from nacl.bindings import (
    crypto_aead_xchacha20poly1305_ietf_decrypt,
    crypto_aead_xchacha20poly1305_ietf_encrypt,
    crypto_sign_ed25519_pk_to_curve25519,
)
from nacl.encoding import RawEncoder
from nacl.exceptions import CryptoError
from nacl.hash import blake2b
from nacl.signing import SigningKey

from kadchat.handshake import StaticIdentity
from kademlia.items import MutableItem

SLOT_SECONDS = 3600
PER_SLOT = 16  # positions per slot and direction: a contact fills at most this many an hour
# Drops are read (and republished) this long after they are made: 48 h, and an hour
# for a contact who was away exactly 48 h to start and read (at 48 h sharp, a bench
# run's recipients back 48 h + a minute found every drop already expired).
RETENTION = 49 * 3600
DROP_TTL = RETENTION + 2 * 3600  # asked of kadchat nodes; plain BEP 44 nodes keep their own time
DATA_SEQ, ACK_SEQ = 1, 2
DATA, ACK, SECRET = 1, 2, 3
PLAIN_SIZE = 900
_NONCE = 24
_DATA_HEADER = struct.Struct(">B16sQQQQHHH")
_ACK_HEADER = struct.Struct(">B16sHH")
_SECRET_BODY = struct.Struct(">B32sQ")
CHUNK_SIZE = PLAIN_SIZE - _DATA_HEADER.size  # 845 bytes of UTF-8 per drop


class DropError(ValueError):
    """An item that is not a valid drop of this pair at this position."""


@dataclass(frozen=True, order=True)
class Position:
    slot: int
    index: int

    def next(self):
        """The following position: the chain goes on in the next slot when this one is full."""
        if self.index + 1 < PER_SLOT:
            return Position(self.slot, self.index + 1)
        return Position(self.slot + 1, 0)


@dataclass(frozen=True)
class Fragment:
    message_id: bytes
    seq: int  # the message's seq in the conversation (kadchat.messaging)
    base: int  # the sender's lowest unacknowledged seq when it made the drop
    sent_us: int  # the message's original send time, unix microseconds
    stored_us: int  # when the drop was made
    index: int
    count: int
    chunk: bytes


@dataclass(frozen=True)
class Receipt:
    message_id: bytes
    index: int
    count: int


@dataclass(frozen=True)
class SecretDrop:
    secret: bytes  # the sender's presence secret
    made_us: int  # when the sender drew it, unix microseconds


def secret_id(secret):
    """The id a SECRET drop goes by: in the sender's drop file and in its ACK."""
    return blake2b(secret, digest_size=16, person=b"kadchat-drop-sid", encoder=RawEncoder)


def slot_of(unix_time):
    return int(unix_time // SLOT_SECONDS)


def split(text):
    """The UTF-8 chunks a message's drops carry, in order."""
    data = text.encode("utf-8")
    return [data[i:i + CHUNK_SIZE] for i in range(0, len(data), CHUNK_SIZE)] or [b""]


class Pair:
    """The drop keys between us and one contact, both directions."""

    def __init__(self, signing_key: SigningKey, contact_key: bytes):
        me = StaticIdentity(signing_key)
        shared = me.dh(crypto_sign_ed25519_pk_to_curve25519(contact_key))
        self._out = _direction_key(shared, me.public_key, contact_key)
        self._in = _direction_key(shared, contact_key, me.public_key)

    def outgoing(self, position):
        return _Slot(self._out, position)

    def incoming(self, position):
        return _Slot(self._in, position)


def _direction_key(shared, sender, recipient):
    return blake2b(sender + recipient, digest_size=32, key=shared, person=b"kadchat-drops",
                   encoder=RawEncoder)


class _Slot:
    """One position's signing key, target and sealing key."""

    def __init__(self, direction_key, position):
        material = blake2b(struct.pack(">QH", position.slot, position.index), digest_size=64,
                           key=direction_key, person=b"kadchat-drop-pos", encoder=RawEncoder)
        self.position = position
        self._signing = SigningKey(material[:32])
        self._aead = material[32:]
        self.public_key = bytes(self._signing.verify_key)
        self.target = MutableItem(self.public_key, b"", 0, b"", bytes(64)).target

    def _sign(self, message):
        return self._signing.sign(message).signature

    def _seal(self, plaintext, seq):
        nonce = os.urandom(_NONCE)
        padded = plaintext + bytes(PLAIN_SIZE - len(plaintext))
        sealed = crypto_aead_xchacha20poly1305_ietf_encrypt(padded, self.public_key, nonce, self._aead)
        return MutableItem.create(self.public_key, self._sign, nonce + sealed, seq)

    def data(self, fragment: Fragment) -> MutableItem:
        if len(fragment.chunk) > CHUNK_SIZE:
            raise ValueError("chunk too big for one drop")
        f = fragment
        header = _DATA_HEADER.pack(DATA, f.message_id, f.seq, f.base, f.sent_us, f.stored_us,
                                   f.index, f.count, len(f.chunk))
        return self._seal(header + f.chunk, DATA_SEQ)

    def ack(self, receipt: Receipt) -> MutableItem:
        r = receipt
        return self._seal(_ACK_HEADER.pack(ACK, r.message_id, r.index, r.count), ACK_SEQ)

    def secret(self, drop: SecretDrop) -> MutableItem:
        return self._seal(_SECRET_BODY.pack(SECRET, drop.secret, drop.made_us), DATA_SEQ)

    def open(self, item: MutableItem):
        """The Fragment, Receipt or SecretDrop in `item`; DropError unless it is this position's."""
        if item.k != self.public_key or item.salt != b"" or not item.verify():
            raise DropError("not this position's drop")
        v = item.v
        if not isinstance(v, bytes) or len(v) != _NONCE + PLAIN_SIZE + 16:
            raise DropError("not a sealed drop")
        try:
            plain = crypto_aead_xchacha20poly1305_ietf_decrypt(v[_NONCE:], self.public_key, v[:_NONCE], self._aead)
        except CryptoError:
            raise DropError("drop does not decrypt") from None
        if plain[0] == DATA and item.seq == DATA_SEQ:
            _, mid, seq, base, sent_us, stored_us, index, count, length = _DATA_HEADER.unpack_from(plain)
            if length > CHUNK_SIZE or not index < count:
                raise DropError("bad fragment header")
            start = _DATA_HEADER.size
            return Fragment(mid, seq, base, sent_us, stored_us, index, count, plain[start:start + length])
        if plain[0] == ACK and item.seq == ACK_SEQ:
            _, mid, index, count = _ACK_HEADER.unpack_from(plain)
            return Receipt(mid, index, count)
        if plain[0] == SECRET and item.seq == DATA_SEQ:
            _, secret, made_us = _SECRET_BODY.unpack_from(plain)
            return SecretDrop(secret, made_us)
        raise DropError("unknown drop kind")
