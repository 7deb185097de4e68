"""BEP 44 items: the signing string, targets, signature checks and size limits.

A mutable item is signed over ``4:salt<len>:<salt>`` (only when the salt is not
empty) + ``3:seqi<seq>e`` + ``1:v`` + bencode(v), the keys of the put dict
flattened without the outer ``d``/``e`` (BEP 44, "Signature Verification").
It is stored under SHA1(k + salt). Signing goes through a callable so that a
blinded key (kadchat.blinding) can sign without a libsodium seed.
"""

import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable

import nacl.bindings

from kademlia.bencode import encode

# BEP 44 error codes, sent in KRPC error messages (BEP 5 defines 201-204).
ERROR_V_TOO_BIG = 205
ERROR_INVALID_SIGNATURE = 206
ERROR_SALT_TOO_BIG = 207
ERROR_CAS_MISMATCH = 301
ERROR_SEQ_LESS_THAN_CURRENT = 302
# BEP 5's "protocol error": wrong field types, which BEP 44 gives no code of its own.
ERROR_PROTOCOL = 203

MAX_V_SIZE = 1000       # bytes of bencoded v that a storing node must accept
MAX_SALT_SIZE = 64
MAX_SEQ = 2**63 - 1     # BEP 44: seq SHOULD NOT exceed MAX_INT64; MAY reject negatives
PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64


class ItemError(ValueError):
    """An item a storing node must refuse; ``code`` is the KRPC error code to send."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def signing_bytes(salt: bytes, seq: int, encoded_v: bytes) -> bytes:
    """The BEP 44 signing string, e.g. b"4:salt6:foobar3:seqi1e1:v12:Hello World!"."""
    prefix = b"4:salt%d:%s" % (len(salt), salt) if salt else b""
    return b"%s3:seqi%de1:v%s" % (prefix, seq, encoded_v)


def immutable_target(v) -> bytes:
    """Target of an immutable item: SHA1 of its bencoded value (BEP 44)."""
    return hashlib.sha1(encode(v)).digest()


@dataclass(frozen=True)
class MutableItem:
    """A signed BEP 44 mutable item; ``v`` is any bencodable value."""

    k: bytes
    salt: bytes
    seq: int
    v: object
    sig: bytes
    # Derived once at construction; v is immutable by contract once signed.
    encoded_v: bytes = field(init=False, repr=False, compare=False)
    target: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        # Items are built from peers' messages: refuse wrong types up front, so
        # that nothing later has to guess. Sizes are checked by check_sizes().
        for name in ("k", "salt", "sig"):
            if type(getattr(self, name)) is not bytes:
                raise ItemError(ERROR_PROTOCOL, "%s must be a byte string" % name)
        if type(self.seq) is not int or not 0 <= self.seq <= MAX_SEQ:
            raise ItemError(ERROR_PROTOCOL, "seq must be an integer in 0..2**63-1")
        try:
            encoded_v = encode(self.v)
        except (TypeError, ValueError) as e:
            raise ItemError(ERROR_PROTOCOL, "v is not bencodable: %s" % e) from None
        object.__setattr__(self, "encoded_v", encoded_v)
        object.__setattr__(self, "target", hashlib.sha1(self.k + self.salt).digest())

    @classmethod
    def create(cls, public_key: bytes, sign: Callable[[bytes], bytes], v, seq: int,
               salt: bytes = b"") -> "MutableItem":
        """Sign ``v`` at ``seq`` with ``sign(message) -> 64-byte signature``."""
        unsigned = cls(public_key, salt, seq, v, bytes(SIGNATURE_SIZE))
        unsigned.check_sizes()
        sig = bytes(sign(signing_bytes(salt, seq, unsigned.encoded_v)))
        if len(sig) != SIGNATURE_SIZE:
            raise ValueError("sign() returned %d bytes, not %d" % (len(sig), SIGNATURE_SIZE))
        return cls(public_key, salt, seq, v, sig)

    def signing_bytes(self) -> bytes:
        return signing_bytes(self.salt, self.seq, self.encoded_v)

    def verify(self) -> bool:
        """True if ``sig`` is k's ed25519 signature of the signing string."""
        if len(self.k) != PUBLIC_KEY_SIZE or len(self.sig) != SIGNATURE_SIZE:
            return False
        try:
            nacl.bindings.crypto_sign_open(self.sig + self.signing_bytes(), self.k)
        except Exception:  # bad signature, small-order or malformed key: all "no"
            return False
        return True

    def check_sizes(self) -> None:
        """Raise ItemError(207) for a salt over 64 bytes, (205) for v over 1000."""
        if len(self.salt) > MAX_SALT_SIZE:
            raise ItemError(ERROR_SALT_TOO_BIG,
                            "salt of %d bytes exceeds %d" % (len(self.salt), MAX_SALT_SIZE))
        if len(self.encoded_v) > MAX_V_SIZE:
            raise ItemError(ERROR_V_TOO_BIG,
                            "v of %d bytes exceeds %d" % (len(self.encoded_v), MAX_V_SIZE))


class VerifiedSignatures:
    """Items whose signature was found valid lately, by a hash of their whole signed
    content: the same item again (a record re-read at every refresh, replicas
    answering one get) is not verified again. Holds at most `size` hashes, least
    recently used out."""

    def __init__(self, size=256):
        self.size = size
        self._valid = OrderedDict()  # hash of k + sig + signing string -> True

    def verify(self, item: MutableItem) -> bool:
        if len(item.k) != PUBLIC_KEY_SIZE or len(item.sig) != SIGNATURE_SIZE:
            return False  # fixed lengths: the hashed concatenation is unambiguous
        key = hashlib.blake2b(item.k + item.sig + item.signing_bytes(), digest_size=32).digest()
        if key in self._valid:
            self._valid.move_to_end(key)
            return True
        if not item.verify():
            return False
        self._valid[key] = True
        if len(self._valid) > self.size:
            self._valid.popitem(last=False)
        return True
