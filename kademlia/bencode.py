"""Strict bencode (BEP 3) codec for KRPC messages from untrusted peers.

Decoding accepts only the canonical form: no leading zeros, no ``-0``, dict keys
strictly increasing byte strings, nothing after the value. Canonical-only means
decode followed by encode is the identity, which BEP 44 relies on when it hashes
and signs ``v`` "as it appeared in the message".

Hostile input is bounded: total size, nesting depth and integer length. The
parser recurses at most ``MAX_DEPTH`` frames, so no input can exhaust the stack.
"""

MAX_DEPTH = 32          # nesting levels of lists/dicts
MAX_INT_DIGITS = 64     # far beyond any int64 a KRPC field carries
DEFAULT_MAX_SIZE = 65536  # a UDP datagram never exceeds this


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
    _encode(obj, parts.append, 0)
    return b"".join(parts)


def _encode(obj, put, depth):
    kind = type(obj)
    if kind is bytes:
        put(b"%d:" % len(obj))
        put(obj)
    elif kind is int:
        put(b"i%de" % obj)
    elif kind is str:
        raw = obj.encode("utf-8")
        put(b"%d:" % len(raw))
        put(raw)
    elif kind is dict:
        depth = _enter(depth)
        items = sorted(((_key_bytes(key), value) for key, value in obj.items()),
                       key=lambda item: item[0])
        put(b"d")
        previous = None
        for key, value in items:
            if key == previous:
                raise ValueError("duplicate dict key %r" % (key,))
            previous = key
            put(b"%d:" % len(key))
            put(key)
            _encode(value, put, depth)
        put(b"e")
    elif kind is list or kind is tuple:
        depth = _enter(depth)
        put(b"l")
        for value in obj:
            _encode(value, put, depth)
        put(b"e")
    elif kind is bytearray or kind is memoryview:
        _encode(bytes(obj), put, depth)
    else:
        raise TypeError("cannot bencode %s" % kind.__name__)


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
        value, end = _decode(data, 0, 0)
    except IndexError:  # ran off the end while reading a type byte
        raise DecodeError("truncated input") from None
    if end != len(data):
        raise DecodeError("trailing data at offset %d" % end)
    return value


# Byte values of the type markers, compared against data[i] (an int).
_INT, _LIST, _DICT, _END = ord("i"), ord("l"), ord("d"), ord("e")
_ZERO, _NINE, _MINUS = ord("0"), ord("9"), ord("-")


def _decode(data, i, depth):
    """Decode the value starting at ``i``; return (value, index after it)."""
    marker = data[i]
    if _ZERO <= marker <= _NINE:
        return _decode_string(data, i)
    if marker == _INT:
        end = data.find(b"e", i + 1, i + 3 + MAX_INT_DIGITS)  # "-" + digits
        if end < 0:
            raise DecodeError("unterminated or oversized integer at %d" % i)
        digits = data[i + 1:end]
        if not _canonical_int(digits):
            raise DecodeError("non-canonical integer %r at %d" % (digits, i))
        return int(digits), end + 1
    if marker == _LIST:
        if depth >= MAX_DEPTH:
            raise DecodeError("nesting deeper than %d levels" % MAX_DEPTH)
        depth += 1
        i += 1
        items = []
        append = items.append
        while data[i] != _END:
            value, i = _decode(data, i, depth)
            append(value)
        return items, i + 1
    if marker == _DICT:
        if depth >= MAX_DEPTH:
            raise DecodeError("nesting deeper than %d levels" % MAX_DEPTH)
        depth += 1
        i += 1
        result = {}
        previous = None
        while data[i] != _END:
            if not _ZERO <= data[i] <= _NINE:
                raise DecodeError("dict key at %d is not a string" % i)
            key, i = _decode_string(data, i)
            if previous is not None and key <= previous:
                raise DecodeError("dict key %r at %d out of order or repeated" % (key, i))
            previous = key
            result[key], i = _decode(data, i, depth)
        return result, i + 1
    raise DecodeError("unexpected byte %r at %d" % (bytes((marker,)), i))


def _decode_string(data, i):
    # Lengths above the input size are rejected below; 10 digits is more than any.
    colon = data.find(b":", i, i + 11)
    if colon < 0:
        raise DecodeError("bad string length at %d" % i)
    digits = data[i:colon]
    if not digits.isdigit() or (digits[0] == _ZERO and len(digits) > 1):
        raise DecodeError("non-canonical string length %r at %d" % (digits, i))
    start = colon + 1
    end = start + int(digits)
    if end > len(data):
        raise DecodeError("string at %d runs past the end" % i)
    return data[start:end], end


def _canonical_int(digits):
    """True for the canonical decimal forms: 0, 7, -7; not 07, -0, +7, 1_0, ''."""
    if digits[:1] == b"-":
        digits = digits[1:]
        if digits[:1] == b"0":
            return False
    # bytes.isdigit is ASCII-only, so int() sees nothing but 0-9 here.
    return (digits.isdigit() and len(digits) <= MAX_INT_DIGITS
            and (digits[0] != _ZERO or len(digits) == 1))
