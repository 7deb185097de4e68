"""Ed25519 key blinding per epoch, in the manner of Tor v3 onion services.

(rend-spec-v3, appendix A.2 "Tweaking a key".) For epoch e = floor(t / 300)
and a presence secret S (kadchat.presencesecret: 32 random bytes the owner
gives its accepted contacts, or empty for the request point anyone with the
card can compute):

    h_e = BLAKE2b-512("kadchat-blind" || A || S || e as 8 bytes big-endian) mod l
    A_e = h_e * A                       (the blinded public key)
    a_e = h_e * a mod l                 (its private scalar; a is the clamped
                                         scalar from SHA-512(seed)[:32])

so A_e = a_e * B. Whoever knows A and S can compute A_e; without both, keys
of different epochs (and of different secrets) look unrelated. The owner signs with a_e as plain ed25519
(RFC 8032 section 5.1.6, with the scalar given instead of derived from a seed):
any standard verifier accepts the signatures under A_e. The per-message nonce
comes from a blinded copy of the seed's nonce half, so it is secret,
deterministic, and different in every epoch.
"""

import hashlib

from nacl.bindings import (
    crypto_core_ed25519_scalar_add,
    crypto_core_ed25519_scalar_mul,
    crypto_core_ed25519_scalar_reduce,
    crypto_scalarmult_ed25519_base_noclamp,
    crypto_scalarmult_ed25519_noclamp,
)
from nacl.encoding import RawEncoder
from nacl.hash import blake2b
from nacl.signing import SigningKey

EPOCH_SECONDS = 300
_BLIND_DOMAIN = b"kadchat-blind"
_NONCE_DOMAIN = b"kadchat-blind-nonce"


def epoch_of(unix_time: float, epoch_seconds: int = EPOCH_SECONDS) -> int:
    """The epoch number that `unix_time` falls in."""
    return int(unix_time // epoch_seconds)


def _reduce(digest64: bytes) -> bytes:
    return crypto_core_ed25519_scalar_reduce(digest64)


SECRET_BYTES = 32


def blinding_factor(public_key: bytes, epoch: int, secret: bytes = b"") -> bytes:
    """h_e as a 32-byte little-endian scalar mod l."""
    if len(public_key) != 32 or not 0 <= epoch < 2**64 or len(secret) not in (0, SECRET_BYTES):
        raise ValueError("need a 32-byte public key, an epoch in 0..2**64-1 and a secret of 0 or 32 bytes")
    data = _BLIND_DOMAIN + public_key + secret + epoch.to_bytes(8, "big")
    return _reduce(blake2b(data, digest_size=64, encoder=RawEncoder))


def blind_public_key(public_key: bytes, epoch: int, secret: bytes = b"") -> bytes:
    """A_e for the identity public key A and secret S; ValueError if A is not a usable key."""
    factor = blinding_factor(public_key, epoch, secret)
    try:
        return crypto_scalarmult_ed25519_noclamp(factor, public_key)
    except Exception as e:  # libsodium refuses invalid or small-order points
        raise ValueError("not a usable ed25519 public key") from e


class BlindedKey:
    """The owner's signing key for one epoch; `public_key` is A_e."""

    def __init__(self, identity_signing_key: SigningKey, epoch: int, secret: bytes = b""):
        identity_public = bytes(identity_signing_key.verify_key)
        expanded = hashlib.sha512(bytes(identity_signing_key)).digest()
        scalar = bytearray(expanded[:32])  # RFC 8032 clamping
        scalar[0] &= 248
        scalar[31] &= 127
        scalar[31] |= 64
        h = blinding_factor(identity_public, epoch, secret)
        a = _reduce(bytes(scalar) + bytes(32))
        self._scalar = crypto_core_ed25519_scalar_mul(h, a)
        self._nonce_key = blake2b(_NONCE_DOMAIN + expanded[32:] + h, digest_size=32, encoder=RawEncoder)
        self.epoch = epoch
        self.public_key = crypto_scalarmult_ed25519_base_noclamp(self._scalar)

    def sign(self, message: bytes) -> bytes:
        """A 64-byte ed25519 signature R || S of `message` under `public_key`."""
        r = _reduce(hashlib.sha512(self._nonce_key + message).digest())
        big_r = crypto_scalarmult_ed25519_base_noclamp(r)
        k = _reduce(hashlib.sha512(big_r + self.public_key + message).digest())
        s = crypto_core_ed25519_scalar_add(r, crypto_core_ed25519_scalar_mul(k, self._scalar))
        return big_r + s
