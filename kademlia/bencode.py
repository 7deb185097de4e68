"""Strict bencode (BEP 3) codec for KRPC messages from untrusted peers.

Decoding accepts only the canonical form: no leading zeros, no ``-0``, dict keys
strictly increasing byte strings, nothing after the value. Canonical-only means
decode followed by encode is the identity, which BEP 44 relies on when it hashes
and signs ``v`` "as it appeared in the message".

Hostile input is bounded: total size, nesting depth and integer length. Every
datagram a lookup sends or receives goes through here, so the work itself is
bencode2's (C++, as strict about canonical forms; it refuses deep nesting
without recursing the stack away), and this module adds our bounds: on what
decoding returns, and on what we encode (nothing that decoding would refuse).
"""

import bencode2

MAX_DEPTH = 32          # nesting levels of lists/dicts
MAX_INT_DIGITS = 64     # far beyond any int64 a KRPC field carries
DEFAULT_MAX_SIZE = 65536  # a UDP datagram never exceeds this
_INT_BOUND = 10**MAX_INT_DIGITS


class DecodeError(ValueError):
    """The bytes are not a canonical bencoded value within our bounds."""


# -- encoding -----------------------------------------------------------------

def encode(obj) -> bytes:
    """Bencode ``obj``: int, bytes, str (as UTF-8), list/tuple, dict.

    Dict keys may be bytes or str; they are sorted by their raw bytes. Raises
    TypeError for other types (bool included: it is not meant as an int here)
    and ValueError for duplicate keys or nesting deeper than decode accepts.
    """
    _check_encodable(obj, 0)
    return bencode2.bencode(obj)


def _check_encodable(obj, depth):
    """What bencode2 would encode but decode refuses: bools, deep nesting."""
    kind = type(obj)
    if kind is bool:
        raise TypeError("cannot bencode bool")
    if kind is dict or kind is list or kind is tuple:
        if depth >= MAX_DEPTH:
            raise ValueError("nesting deeper than %d levels" % MAX_DEPTH)
        for item in (obj.values() if kind is dict else obj):
            kind = type(item)
            if kind is not bytes and kind is not int:
                _check_encodable(item, depth + 1)


# -- decoding -----------------------------------------------------------------

def decode(data, max_size: int = DEFAULT_MAX_SIZE):
    """Decode one canonical bencoded value; strings and dict keys come back as bytes.

    Raises DecodeError for anything non-canonical, truncated, followed by extra
    bytes, nested deeper than MAX_DEPTH, longer than ``max_size`` bytes, or
    holding an integer of more than MAX_INT_DIGITS digits.
    """
    if type(data) is not bytes:
        if not isinstance(data, (bytearray, memoryview)):
            raise TypeError("decode needs bytes, not %s" % type(data).__name__)
        data = bytes(data)
    if len(data) > max_size:
        raise DecodeError("input of %d bytes exceeds %d" % (len(data), max_size))
    try:
        value = bencode2.bdecode(data)
    except ValueError as e:  # BencodeDecodeError, or an integer past Python's digit limit
        raise DecodeError(str(e)) from None
    _check_bounds(value, 0)
    return value


def _check_bounds(value, depth):
    """Our bounds on a decoded value: nesting depth and integer length. Recursion
    stops one level past MAX_DEPTH, however deep the value."""
    kind = type(value)
    if kind is int:
        if not -_INT_BOUND < value < _INT_BOUND:
            raise DecodeError("integer of more than %d digits" % MAX_INT_DIGITS)
    elif kind is dict or kind is list:
        if depth >= MAX_DEPTH:
            raise DecodeError("nesting deeper than %d levels" % MAX_DEPTH)
        for item in (value.values() if kind is dict else value):
            kind = type(item)
            if kind is int:
                if not -_INT_BOUND < item < _INT_BOUND:
                    raise DecodeError("integer of more than %d digits" % MAX_INT_DIGITS)
            elif kind is not bytes:
                _check_bounds(item, depth + 1)
