"""Private presence: where a user can be reached, readable by their contacts only.

Record for epoch e (DESIGN.md, "Presence is for accepted contacts, and
revocable"): a BEP 44 mutable item with k = A_e (the identity key blinded for e
and our presence secret S, kadchat.blinding), salt = SALT, seq growing within
the epoch only (`SeqCounter`), and v = nonce || XChaCha20-Poly1305(key_e,
payload, ad=A_e), where key_e = BLAKE2b keyed with A || S and personalised
"kadchat-presence" over e (a domain apart from the blinding hash). S is given
to accepted contacts only, over the session (kadchat.presencesecret), and
replaced when one is removed or blocked.

With S empty the same construction is the *request point*: a record anyone
with the card finds, which lists our introducers and nothing else (no
address, status "online"), so that a stranger can send a contact request
through them to our request tag (kadchat.nat.regproof), and a contact without
our current S a handshake.

The payload is a bencoded dict, length-prefixed and zero-padded to a fixed
size so record lengths say nothing about their contents:

    s: status (online | away | offline)   a: [compact address, ...]
    n: NAT class (consistent | random | unknown)
    i: [compact introducer address, ...]  t: publish time, unix milliseconds

Storage nodes see an unlinkable key, a signature and ciphertext; only someone
who knows A and S finds (record_target) and reads (open_record) the record.

`kadchat.publisher.PresencePublisher` keeps our records in the DHT;
`kadchat.tracker.PresenceTracker` follows our contacts' records.
"""

import hashlib
import os
import struct
from dataclasses import dataclass, field, replace

from nacl.bindings import (
    crypto_aead_xchacha20poly1305_ietf_decrypt,
    crypto_aead_xchacha20poly1305_ietf_encrypt,
    crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
)
from nacl.encoding import RawEncoder
from nacl.exceptions import CryptoError
from nacl.hash import blake2b

from kadchat.addrvote import CONSISTENT, RANDOM, UNKNOWN
from kadchat.blinding import BlindedKey, blind_public_key
from kademlia import bencode, krpc
from kademlia.items import MutableItem

ONLINE, AWAY, OFFLINE = "online", "away", "offline"
STATUSES = (ONLINE, AWAY, OFFLINE)
NAT_CLASSES = (CONSISTENT, RANDOM, UNKNOWN)
SALT = b""  # k already differs per epoch; an empty salt is the BEP 44 default
MAX_ADDRS = 8
MAX_INTRODUCERS = 4
PADDED_SIZE = 256  # 2-byte length + payload + zero padding
_NONCE_BYTES = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
_PERSONAL = b"kadchat-presence"


class PresenceError(ValueError):
    """A record that is not a valid presence record of this contact for this epoch."""


@dataclass(frozen=True)
class Presence:
    status: str
    addrs: tuple = ()  # ((ip, port), ...) candidates to reach the user at
    nat: str = UNKNOWN
    introducers: tuple = ()  # ((ip, port), ...) DHT nodes that can pass a message on
    ts: float = 0.0  # unix time of publication, by the publisher's clock
    # Not in the payload: the presence secret the record opened with (b"": a request point).
    secret: bytes = field(default=b"", repr=False)

    def __post_init__(self):
        object.__setattr__(self, "addrs", tuple(tuple(a) for a in self.addrs))
        object.__setattr__(self, "introducers", tuple(tuple(a) for a in self.introducers))

    def route(self):
        """What a contact needs to reach us; a change of it is worth telling the UI."""
        return self.addrs, self.nat, self.introducers


# -- the record ----------------------------------------------------------------

def presence_key(public_key: bytes, epoch: int, secret: bytes = b"") -> bytes:
    """The symmetric key of the record of identity `public_key` under presence `secret` for `epoch`."""
    return blake2b(struct.pack(">Q", epoch), digest_size=32, key=public_key + secret,
                   person=_PERSONAL, encoder=RawEncoder)


def _encode_addresses(addresses, limit, what):
    if len(addresses) > limit:
        raise ValueError(f"at most {limit} {what}")
    try:
        return [krpc.encode_address(a) for a in addresses]
    except (OSError, TypeError, ValueError, struct.error) as e:
        raise ValueError(f"bad {what}: {e}") from None


def _encode_payload(presence: Presence) -> bytes:
    if presence.status not in STATUSES or presence.nat not in NAT_CLASSES:
        raise ValueError("bad status or NAT class")
    payload = bencode.encode({
        b"s": presence.status,
        b"a": _encode_addresses(presence.addrs, MAX_ADDRS, "addresses"),
        b"n": presence.nat,
        b"i": _encode_addresses(presence.introducers, MAX_INTRODUCERS, "introducers"),
        b"t": int(round(presence.ts * 1000)),
    })
    if len(payload) > PADDED_SIZE - 2:
        raise ValueError("presence payload too large")
    return struct.pack(">H", len(payload)) + payload + bytes(PADDED_SIZE - 2 - len(payload))


def _decode_addresses(value, limit):
    if not isinstance(value, list) or len(value) > limit:
        raise PresenceError("bad address list")
    if any(not isinstance(a, bytes) or len(a) != krpc.COMPACT_ADDR_LENGTH for a in value):
        raise PresenceError("bad compact address")
    return tuple(krpc.decode_address(a) for a in value)


def _decode_payload(padded: bytes) -> Presence:
    if len(padded) != PADDED_SIZE:
        raise PresenceError("bad payload size")
    (length,) = struct.unpack(">H", padded[:2])
    try:
        fields = bencode.decode(padded[2:2 + length]) if length <= PADDED_SIZE - 2 else None
    except bencode.DecodeError:
        fields = None
    if not isinstance(fields, dict):
        raise PresenceError("payload is not a bencoded dict")
    status, nat, ts = fields.get(b"s"), fields.get(b"n"), fields.get(b"t")
    if not isinstance(status, bytes) or status.decode("latin-1") not in STATUSES:
        raise PresenceError("bad status")
    if not isinstance(nat, bytes) or nat.decode("latin-1") not in NAT_CLASSES:
        raise PresenceError("bad NAT class")
    if not isinstance(ts, int) or ts < 0:
        raise PresenceError("bad timestamp")
    return Presence(
        status=status.decode(),
        addrs=_decode_addresses(fields.get(b"a", []), MAX_ADDRS),
        nat=nat.decode(),
        introducers=_decode_addresses(fields.get(b"i", []), MAX_INTRODUCERS),
        ts=ts / 1000,
    )


def make_record(identity, epoch: int, presence: Presence, seq: int, secret: bytes = b"") -> MutableItem:
    """Our signed, encrypted record for `epoch` under our presence `secret` (b"": the request
    point); `identity` is a kadchat.identity.Identity."""
    blinded = BlindedKey(identity.signing_key, epoch, secret)
    nonce = os.urandom(_NONCE_BYTES)
    sealed = crypto_aead_xchacha20poly1305_ietf_encrypt(
        _encode_payload(presence), blinded.public_key, nonce, presence_key(identity.public_key, epoch, secret)
    )
    return MutableItem.create(blinded.public_key, blinded.sign, nonce + sealed, seq, salt=SALT)


def record_target(contact_public_key: bytes, epoch: int, secret: bytes = b"") -> bytes:
    """The DHT target (20 bytes) of a contact's record for `epoch` under the `secret` it gave us."""
    return hashlib.sha1(blind_public_key(contact_public_key, epoch, secret) + SALT).digest()


def open_record(contact_public_key: bytes, epoch: int, item: MutableItem, secret: bytes = b"") -> Presence:
    """The presence in a contact's record; PresenceError unless it is genuinely theirs for `epoch`
    under `secret`. Its `secret` field says which (b"": a request point)."""
    try:
        blinded = blind_public_key(contact_public_key, epoch, secret)
    except ValueError as e:
        raise PresenceError(str(e)) from None
    if item.k != blinded or item.salt != SALT:
        raise PresenceError("not this contact's record for this epoch")
    if not item.verify():
        raise PresenceError("bad signature")
    if not isinstance(item.v, bytes) or len(item.v) <= _NONCE_BYTES:
        raise PresenceError("record value is not a sealed payload")
    try:
        padded = crypto_aead_xchacha20poly1305_ietf_decrypt(
            item.v[_NONCE_BYTES:], blinded, item.v[:_NONCE_BYTES], presence_key(contact_public_key, epoch, secret)
        )
    except CryptoError:
        raise PresenceError("record does not decrypt") from None
    return replace(_decode_payload(padded), secret=secret)
