"""Contact cards: an identity public key as text people can copy and paste.

A card is ``kc1`` followed by lowercase unpadded base32 (RFC 4648 alphabet) of
the 32-byte ed25519 public key and a 4-byte checksum, BLAKE2b-32 over
``kc1`` + key.  58 base32 characters carry 290 bits; the 2 bits left over must be
zero, so every character matters and a typo anywhere changes the decoded bytes,
which the checksum then catches (a wrong card passes with odds of 1 in 2**32).
Decoding ignores surrounding whitespace and case.
"""

import base64

from nacl.bindings import crypto_core_ed25519_is_valid_point
from nacl.hash import blake2b
from nacl.encoding import RawEncoder

from kadchat.errors import UserError

PREFIX = "kc1"
KEY_BYTES = 32
CHECKSUM_BYTES = 4
_BODY_CHARS = 58  # ceil((32 + 4) * 8 / 5)


def _checksum(public_key: bytes) -> bytes:
    return blake2b(PREFIX.encode() + public_key, digest_size=CHECKSUM_BYTES, encoder=RawEncoder)


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").rstrip("=").lower()


def encode_card(public_key: bytes) -> str:
    """The card text for a 32-byte ed25519 public key."""
    if len(public_key) != KEY_BYTES:
        raise ValueError("an ed25519 public key is 32 bytes")
    return PREFIX + _b32(public_key + _checksum(public_key))


def decode_card(text: str) -> bytes:
    """The public key in a card; UserError for anything that is not a valid card."""
    card = text.strip().lower()
    body = card[len(PREFIX):]
    if not card.startswith(PREFIX) or len(body) != _BODY_CHARS:
        raise UserError(f"not a kadchat card: {_shorten(text)!r}")
    try:
        raw = base64.b32decode(body.upper() + "=" * (-len(body) % 8))
    except ValueError:
        raise UserError(f"card checksum mismatch: probably a typo in {_shorten(text)!r}") from None
    public_key, checksum = raw[:KEY_BYTES], raw[KEY_BYTES:]
    # Re-encoding catches non-zero leftover bits, which b32decode silently drops.
    if _b32(raw) != body or checksum != _checksum(public_key):
        raise UserError(f"card checksum mismatch: probably a typo in {_shorten(text)!r}")
    if not crypto_core_ed25519_is_valid_point(public_key):
        raise UserError(f"card does not hold a usable public key: {_shorten(text)!r}")
    return public_key


def _shorten(text: str, limit: int = 80) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[:limit] + "..."
