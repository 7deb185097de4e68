"""kademlia.krpc: message shapes, compact encodings, and hostile input."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kademlia import bencode, krpc
from kademlia.routing import Contact

NODE_ID = b"N" * 20


def query(**overrides):
    message = {b"t": b"aa", b"y": b"q", b"q": b"ping", b"a": {b"id": NODE_ID}}
    message.update({key.encode(): value for key, value in overrides.items()})
    return bencode.encode(message)


def test_query_round_trip():
    data = krpc.encode_query(b"xy", b"find_node", {b"id": NODE_ID, b"target": b"T" * 20})
    message = krpc.decode_message(data)
    assert isinstance(message, krpc.Query)
    assert (message.transaction, message.method, message.sender_id) == (b"xy", b"find_node", NODE_ID)
    assert message.args[b"target"] == b"T" * 20
    assert not message.read_only


def test_read_only_flag_is_read_from_the_top_level_dictionary_as_bep_43_puts_it():
    query = bencode.decode(krpc.encode_query(b"xy", b"ping", {b"id": NODE_ID}))
    assert krpc.decode_message(bencode.encode({**query, b"ro": 1})).read_only
    in_arguments = krpc.encode_query(b"xy", b"ping", {b"id": NODE_ID, b"ro": 1})
    assert not krpc.decode_message(in_arguments).read_only
    written = krpc.encode_query(b"xy", b"ping", {b"id": NODE_ID}, min_size=120, read_only=True)
    assert bencode.decode(written)[b"ro"] == 1 and len(written) >= 120 and krpc.decode_message(written).read_only


def test_response_round_trip_carries_the_requester_address():
    data = krpc.encode_response(b"xy", {b"id": NODE_ID}, ("127.0.0.7", 6881))
    message = krpc.decode_message(data)
    assert isinstance(message, krpc.Response)
    assert message.sender_id == NODE_ID
    assert message.seen_address == ("127.0.0.7", 6881)


def test_error_round_trip():
    message = krpc.decode_message(krpc.encode_error(b"xy", 204, "method unknown"))
    assert isinstance(message, krpc.ErrorReply)
    assert (message.error.code, message.error.message) == (204, "method unknown")


def test_response_with_a_malformed_ip_field_has_no_seen_address():
    data = bencode.encode({b"t": b"x", b"y": b"r", b"r": {b"id": NODE_ID}, b"ip": b"abc"})
    assert krpc.decode_message(data).seen_address is None


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"d",
        b"de",
        b"le",
        b"i1e",
        b"d1:t2:aae",
        b"\xff" * 30,
        query()[:-1],
        query() + b"x",
        query(t=b""),
        query(t=b"x" * 17),
        query(t=5),
        query(y=b"z"),
        query(y=5),
        query(q=5),
        query(a=b"not a dict"),
        query(a={}),
        query(a={b"id": b"short"}),
        query(a={b"id": 20}),
        bencode.encode({b"t": b"x", b"y": b"r"}),
        bencode.encode({b"t": b"x", b"y": b"r", b"r": {b"id": b"x"}}),
        bencode.encode({b"t": b"x", b"y": b"r", b"r": []}),
        bencode.encode({b"t": b"x", b"y": b"e", b"e": []}),
        bencode.encode({b"t": b"x", b"y": b"e", b"e": [b"201", b"x"]}),
        bencode.encode({b"t": b"x", b"y": b"e", b"e": [201, 5]}),
        bencode.encode({b"t": b"x", b"y": b"e", b"e": b"201"}),
        b"d1:ad2:id20:" + NODE_ID + b"e1:q4:ping1:t2:aa1:y1:qe" + b" " * 1500,  # too large
        b"d1:t2:aa1:t2:bbe",  # repeated key
        b"d1:y1:q1:t2:aae",  # keys out of order
        b"l" * 5000,  # deep nesting
    ],
)
def test_malformed_messages_raise_malformed_message(data):
    with pytest.raises(krpc.MalformedMessage):
        krpc.decode_message(data)


def test_error_message_with_invalid_utf8_is_decoded_with_replacement():
    data = bencode.encode({b"t": b"x", b"y": b"e", b"e": [202, b"\xff\xfe"]})
    assert krpc.decode_message(data).error.code == 202


json_like = st.recursive(
    st.integers(-(2**70), 2**70) | st.binary(max_size=30),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.binary(max_size=4) | st.sampled_from([b"t", b"y", b"q", b"a", b"r", b"e", b"id", b"ip"]),
                      children, max_size=5),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_random_bytes_never_raise_anything_but_malformed_message(data):
    try:
        krpc.decode_message(data)
    except krpc.MalformedMessage:
        pass


@settings(max_examples=400, deadline=None)
@given(
    t=json_like,
    y=st.sampled_from([b"q", b"r", b"e"]) | json_like,
    body=json_like,
    args=st.dictionaries(st.sampled_from([b"id", b"target", b"ro", b"nodes"]), json_like, max_size=3),
)
def test_well_formed_bencode_of_wrong_shapes_never_crashes_decoding(t, y, body, args):
    for message in (
        {b"t": t, b"y": y, b"q": body, b"a": args},
        {b"t": t, b"y": y, b"r": args, b"ip": body},
        {b"t": t, b"y": y, b"e": body},
    ):
        try:
            decoded = krpc.decode_message(bencode.encode(message))
        except (krpc.MalformedMessage, ValueError):  # ValueError: our own encoder's depth limit
            continue
        assert isinstance(decoded, (krpc.Query, krpc.Response, krpc.ErrorReply))


def test_compact_nodes_round_trip():
    contacts = [Contact(bytes([n]) * 20, (f"127.0.0.{n}", 6000 + n), 0) for n in range(1, 9)]
    decoded = krpc.decode_nodes(krpc.encode_nodes(contacts))
    assert decoded == [(c.node_id, c.address) for c in contacts]


def test_a_contact_that_moved_is_encoded_at_its_new_address():
    contact = Contact(b"i" * 20, ("127.0.0.1", 6881), 0)
    contact.address = ("127.0.0.2", 6882)
    assert krpc.decode_nodes(krpc.encode_nodes([contact])) == [(b"i" * 20, ("127.0.0.2", 6882))]


@pytest.mark.parametrize("bad", [b"x", b"x" * 27, None, 5, []])
def test_compact_nodes_of_a_wrong_length_or_type_are_malformed(bad):
    with pytest.raises(krpc.MalformedMessage):
        krpc.decode_nodes(bad)


@pytest.mark.parametrize(
    "address",
    [("0.0.0.0", 6881), ("224.0.0.1", 6881), ("255.255.255.255", 6881), ("240.0.0.1", 6881), ("127.0.0.1", 0)],
)
def test_compact_nodes_pointing_at_unusable_addresses_are_skipped(address):
    data = b"A" * 20 + krpc.encode_address(address) + b"B" * 20 + krpc.encode_address(("127.0.0.5", 7))
    assert krpc.decode_nodes(data) == [(b"B" * 20, ("127.0.0.5", 7))]
