"""Contact cards: an identity public key as text people can copy and paste.

A card is ``kc1`` followed by lowercase unpadded base32 (RFC 4648 alphabet) of
the 32-byte ed25519 public key and a 4-byte checksum, BLAKE2b-32 over
``kc1`` + key.  58 base32 characters carry 290 bits; the 2 bits left over must be
zero, so every character matters and a typo anywhere changes the decoded bytes,
which the checksum then catches (a wrong card passes with odds of 1 in 2**32).
Decoding ignores case and is forgiving about how a card was pasted: spaces or
line breaks inside it, punctuation or quotes around it, text before it, the
rest of a ``CARD NAME`` line after it (as in identity.txt), ``#`` comment lines.
None of that can turn a mistyped card into a valid one: the characters of the
card itself are still all checked.
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


_CARD_CHARS = len(PREFIX) + _BODY_CHARS
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))  # zero-width, pasted from web pages
_AROUND = "\"'`.,;:!?()[]{}<>*_~\u00ab\u00bb\u201c\u201d\u2018\u2019"  # quotes, brackets, punctuation


def split_pasted(text: str) -> tuple[str, str]:
    """(the card's characters, the text after it) in pasted text; the card part
    may still be wrong, `decode_card` says how. For ``kc1abc... Ben Big`` the
    text after is ``Ben Big``."""
    lines = text.translate(_INVISIBLE).splitlines()
    words = " ".join(line for line in lines if not line.lstrip().startswith("#")).split()
    start = next((i for i, word in enumerate(words) if word.strip(_AROUND).lower().startswith(PREFIX)), None)
    if start is None:
        return text.strip(), ""
    card, end = "", start
    for end in range(start, len(words)):  # a card broken over several words or lines
        card += words[end].strip(_AROUND)
        if len(card) >= _CARD_CHARS:
            break
    return card, " ".join(words[end + 1:])


def decode_card(text: str) -> bytes:
    """The public key in a card, as pasted (see split_pasted); UserError for
    anything that does not hold a valid card."""
    card = split_pasted(text)[0].lower()
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
