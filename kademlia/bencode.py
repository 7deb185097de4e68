"""Strict bencode (BEP 3) codec for KRPC messages from untrusted peers.

Decoding accepts only the canonical form: no leading zeros, no ``-0``, dict keys
strictly increasing byte strings, nothing after the value. Canonical-only means
decode followed by encode is the identity, which BEP 44 relies on when it hashes
and signs ``v`` "as it appeared in the message".

Hostile input is bounded: total size, nesting depth and integer length. Every
datagram a lookup receives is decoded, so the parsing itself is bencode2's
(C++, as strict about canonical forms; it refuses deep nesting without
recursing the stack away), and this module adds our bounds on what it returns.
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
    parts = []
    _encode(obj, parts, 0)
    return b"".join(parts)


def _encode(obj, parts, depth):
    kind = type(obj)
    if kind is bytes:
        parts.append(b"%d:" % len(obj))
        parts.append(obj)
    elif kind is int:
        parts.append(b"i%de" % obj)
    elif kind is dict:
        depth = _enter(depth)
        parts.append(b"d")
        for key, value in _sorted_items(obj):
            parts.append(b"%d:" % len(key))
            parts.append(key)
            if type(value) is bytes:  # most values of a KRPC message: no call for them
                parts.append(b"%d:" % len(value))
                parts.append(value)
            else:
                _encode(value, parts, depth)
        parts.append(b"e")
    elif kind is str:
        raw = obj.encode("utf-8")
        parts.append(b"%d:" % len(raw))
        parts.append(raw)
    elif kind is list or kind is tuple:
        depth = _enter(depth)
        parts.append(b"l")
        for value in obj:
            _encode(value, parts, depth)
        parts.append(b"e")
    elif kind is bytearray or kind is memoryview:
        _encode(bytes(obj), parts, depth)
    else:
        raise TypeError("cannot bencode %s" % kind.__name__)


def _sorted_items(obj):
    """(raw key, value) pairs in raw-byte order."""
    try:
        # Keys all bytes, or all str: code point order is UTF-8 byte order.
        keys = sorted(obj)
    except TypeError:  # bytes and str mixed (or keys of no bencode type)
        keys = None
    if keys is not None and (not keys or type(keys[0]) is bytes):
        for key in keys:
            if type(key) is not bytes:
                raise TypeError("dict keys must be bytes or str, not %s" % type(key).__name__)
        return [(key, obj[key]) for key in keys]
    items = sorted(((_key_bytes(key), value) for key, value in obj.items()),
                   key=lambda item: item[0])
    for (key, _), (following, _) in zip(items, items[1:]):
        if key == following:
            raise ValueError("duplicate dict key %r" % (key,))
    return items


def _enter(depth):
    if depth >= MAX_DEPTH:
        raise ValueError("nesting deeper than %d levels" % MAX_DEPTH)
    return depth + 1


def _key_bytes(key):
    if type(key) is bytes:
        return key
    if type(key) is str:
        return key.encode("utf-8")
    raise TypeError("dict keys must be bytes or str, not %s" % type(key).__name__)


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
    except bencode2.BencodeDecodeError as e:
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
            if type(item) is not bytes:
                _check_bounds(item, depth + 1)
