"""kademlia.bencode: canonical round trips, strict rejection, fuzzing."""

import pytest
from hypothesis import given, settings, strategies as st

from kademlia.bencode import MAX_DEPTH, DecodeError, decode, encode

# Values as decode returns them: bytes strings, bytes keys, lists.
decoded_values = st.recursive(
    st.integers() | st.binary(max_size=40),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.binary(max_size=10), children, max_size=5),
    max_leaves=30,
)


# -- encoding -----------------------------------------------------------------

def test_encodes_each_type_in_its_canonical_form():
    assert encode(0) == b"i0e"
    assert encode(-42) == b"i-42e"
    assert encode(b"spam") == b"4:spam"
    assert encode(b"") == b"0:"
    assert encode([1, b"a"]) == b"li1e1:ae"
    assert encode((1, 2)) == b"li1ei2ee"
    assert encode({}) == b"de"


def test_str_is_encoded_as_utf8():
    assert encode("é") == b"2:\xc3\xa9"


def test_dict_keys_are_sorted_by_raw_bytes_whatever_their_type():
    # "Z" (0x5a) sorts before "a" (0x61) and b"\xff" last, as raw bytes.
    assert encode({b"\xff": 1, "a": 2, b"Z": 3}) == b"d1:Zi3e1:ai2e1:\xffi1ee"


def test_same_key_as_str_and_bytes_is_refused():
    with pytest.raises(ValueError):
        encode({"a": 1, b"a": 2})


@pytest.mark.parametrize("value", [True, 1.5, None, {1: 2}, object()])
def test_unencodable_types_raise_type_error(value):
    with pytest.raises(TypeError):
        encode(value)


def test_encoding_refuses_nesting_decode_would_refuse():
    too_deep = []
    for _ in range(MAX_DEPTH):
        too_deep = [too_deep]
    with pytest.raises(ValueError):
        encode(too_deep)


# -- round trips --------------------------------------------------------------

@given(decoded_values)
def test_decode_inverts_encode(value):
    assert decode(encode(value)) == value


@given(decoded_values)
def test_encode_inverts_decode_so_reencoding_is_verbatim(value):
    data = encode(value)
    assert encode(decode(data)) == data


def test_decodes_a_krpc_query():
    message = b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe"
    assert decode(message) == {
        b"a": {b"id": b"abcdefghij0123456789"}, b"q": b"ping", b"t": b"aa", b"y": b"q"}


def test_accepts_nesting_up_to_the_limit():
    data = b"l" * MAX_DEPTH + b"e" * MAX_DEPTH
    value = decode(data)
    for _ in range(MAX_DEPTH - 1):
        value = value[0]
    assert value == []


def test_accepts_bytearray_and_memoryview():
    assert decode(bytearray(b"i7e")) == 7
    assert decode(memoryview(b"1:x")) == b"x"


def test_large_integers_within_the_digit_bound_decode():
    assert decode(b"i" + b"9" * 64 + b"e") == int("9" * 64)
    assert decode(b"i-" + b"9" * 64 + b"e") == -int("9" * 64)


# -- rejection of non-canonical and hostile input ------------------------------

@pytest.mark.parametrize("data, why", [
    (b"i03e", "leading zero"),
    (b"i-0e", "negative zero"),
    (b"i-03e", "negative leading zero"),
    (b"i+3e", "plus sign"),
    (b"i1_0e", "underscore accepted by int()"),
    (b"i 3e", "whitespace accepted by int()"),
    (b"ie", "empty integer"),
    (b"i-e", "bare minus"),
    (b"i3", "unterminated integer"),
    (b"i" + b"9" * 65 + b"e", "integer too long"),
    (b"i-" + b"9" * 65 + b"e", "negative integer too long"),
    (b"i" + b"9" * 5000 + b"e", "integer past Python's own digit limit"),
    (b"03:abc", "leading zero in string length"),
    (b"-1:a", "negative string length"),
    (b"5:abc", "string runs past the end"),
    (b"3abc", "missing colon"),
    (b"99999999999:a", "absurd string length"),
    (b"d1:bi1e1:ai2ee", "keys out of order"),
    (b"d1:ai1e1:ai2ee", "repeated key"),
    (b"di1ei2ee", "integer key"),
    (b"dlei2ee", "list key"),
    (b"d1:ae", "key without value"),
    (b"li1e", "unterminated list"),
    (b"d1:ai1e", "unterminated dict"),
    (b"l", "list marker only"),
    (b"", "empty input"),
    (b"e", "end marker alone"),
    (b"x", "unknown type byte"),
    (b"i1ei2e", "trailing value"),
    (b"4:spam\n", "trailing newline"),
])
def test_rejects_non_canonical_or_malformed(data, why):
    with pytest.raises(DecodeError):
        decode(data)


def test_rejects_nesting_deeper_than_the_limit():
    depth = MAX_DEPTH + 1
    with pytest.raises(DecodeError):
        decode(b"l" * depth + b"e" * depth)
    with pytest.raises(DecodeError):
        decode(b"d1:a" * depth + b"i0e" + b"e" * depth)


def test_deep_nesting_bomb_raises_decode_error_not_recursion_error():
    bomb = b"l" * 60000
    with pytest.raises(DecodeError):
        decode(bomb)


def test_rejects_input_over_max_size():
    data = encode(b"x" * 100)
    assert decode(data, max_size=len(data)) == b"x" * 100
    with pytest.raises(DecodeError):
        decode(data, max_size=len(data) - 1)


def test_decode_error_is_a_value_error():
    assert issubclass(DecodeError, ValueError)


def test_non_bytes_input_is_a_type_error():
    with pytest.raises(TypeError):
        decode("i1e")


# -- fuzzing: decode returns or raises DecodeError, nothing else ---------------

def _decode_or_reject(data):
    try:
        value = decode(data)
    except DecodeError:
        return
    # Whatever is accepted is canonical: it re-encodes to the very same bytes.
    assert encode(value) == data


@settings(max_examples=500)
@given(st.binary(max_size=200))
def test_random_bytes_decode_or_raise_decode_error(data):
    _decode_or_reject(data)


@settings(max_examples=500)
@given(st.text(alphabet="0123456789:-iledx", max_size=60).map(str.encode))
def test_bencode_alphabet_soup_decodes_or_raises_decode_error(data):
    _decode_or_reject(data)


@settings(max_examples=500)
@given(decoded_values, st.data())
def test_mutated_valid_encodings_decode_or_raise_decode_error(value, data):
    encoded = bytearray(encode(value))
    for _ in range(data.draw(st.integers(1, 4))):
        action = data.draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        position = data.draw(st.integers(0, len(encoded)))
        if action == "flip" and position < len(encoded):
            encoded[position] = data.draw(st.integers(0, 255))
        elif action == "insert":
            encoded.insert(position, data.draw(st.sampled_from(b"0123456789:-iledx")))
        elif action == "delete" and position < len(encoded):
            del encoded[position]
        elif action == "truncate":
            del encoded[position:]
    _decode_or_reject(bytes(encoded))
