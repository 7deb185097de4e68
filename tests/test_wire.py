"""kadchat.wire: chat datagram and record codecs, strict on hostile input."""

import struct

import pytest
from hypothesis import given, settings, strategies as st

from kadchat import wire

fragments = st.builds(
    wire.MessageFragment,
    message_id=st.binary(min_size=16, max_size=16),
    seq=st.integers(1, wire.MAX_SEQ),
    base=st.just(1),
    timestamp_us=st.integers(0, 2**64 - 1),
    index=st.just(0),
    count=st.just(1),
    chunk=st.binary(min_size=1, max_size=wire.CHUNK_SIZE),
)


def test_every_outer_type_round_trips():
    init = wire.encode_initiation(7, b"e" * 32, b"s" * 48, b"t" * 24)
    resp = wire.encode_response(1, 2, b"e" * 32, b"x" * 16)
    header = wire.transport_header(9, 2**40)
    notice = wire.encode_unknown_session(5, b"r" * 16)
    assert wire.decode(init) == wire.Initiation(7, b"e" * 32, b"s" * 48, b"t" * 24)
    assert wire.decode(resp) == wire.Response(1, 2, b"e" * 32, b"x" * 16)
    assert wire.decode(header + b"c" * 16) == wire.Transport(9, 2**40, header, b"c" * 16)
    assert wire.decode(notice) == wire.UnknownSession(5, b"r" * 16)
    assert init[:5] == wire.initiation_header(7) and resp[:9] == wire.response_header(1, 2)


def test_session_datagrams_never_look_like_krpc_or_nat():
    assert not wire.is_session_datagram(b"d1:ad2:id20:")
    assert not wire.is_session_datagram(b"")
    assert not wire.is_session_datagram(b"\x14" + b"\0" * 40)  # a NAT relay datagram
    assert wire.is_session_datagram(wire.encode_unknown_session(1, bytes(16)))


@pytest.mark.parametrize("data", [
    b"\x01" + b"\0" * 10,  # short initiation
    wire.encode_initiation(1, b"e" * 32, b"s" * 48, b"t" * 24) + b"\0",  # trailing byte
    b"\x03" + b"\0" * 27,  # transport without room for a tag
    b"\x03" + b"\0" * wire.MAX_DATAGRAM,  # oversize transport
    b"\x04\0\0\0",  # truncated notice
    b"\x1f",  # reserved but unassigned type
])
def test_malformed_datagrams_raise_wire_error(data):
    with pytest.raises(wire.WireError):
        wire.decode(data)


@given(fragments)
def test_fragment_round_trips(fragment):
    assert wire.decode_record(wire.encode_fragment(fragment)) == fragment


def test_ack_round_trips_and_knows_when_complete():
    ack = wire.Ack(b"i" * 16, 11, (1 << 11) - 1)
    assert wire.decode_record(wire.encode_ack(ack)) == ack and ack.complete
    partial = wire.Ack(b"i" * 16, 11, 0b101)
    assert wire.decode_record(wire.encode_ack(partial)) == partial and not partial.complete


def test_empty_record_is_a_keepalive():
    assert wire.decode_record(b"") is None


@pytest.mark.parametrize("fields", [
    dict(base=5, seq=4),  # base above seq
    dict(index=3, count=3),  # index outside the message
    dict(count=wire.MAX_FRAGMENTS + 1, index=0),
])
def test_inconsistent_fragment_fields_are_refused(fields):
    good = dict(message_id=b"i" * 16, seq=4, base=1, timestamp_us=0, index=0, count=1)
    good.update(fields)
    record = wire._MESSAGE_HEADER.pack(wire.RECORD_MESSAGE, *good.values()) + b"x"
    with pytest.raises(wire.WireError):
        wire.decode_record(record)


def test_short_inner_fragment_is_refused():
    record = wire._MESSAGE_HEADER.pack(wire.RECORD_MESSAGE, b"i" * 16, 1, 1, 0, 0, 2) + b"x"
    with pytest.raises(wire.WireError):
        wire.decode_record(record)


def test_ack_naming_fragments_beyond_count_is_refused():
    record = wire._ACK_HEADER.pack(wire.RECORD_ACK, b"i" * 16, 3) + bytes([0b1000])
    with pytest.raises(wire.WireError):
        wire.decode_record(record)


@settings(max_examples=2000)
@given(st.binary(max_size=1300))
def test_any_bytes_decode_or_raise_wire_error_only(data):
    try:
        wire.decode(data)
    except wire.WireError:
        pass


@settings(max_examples=2000)
@given(st.one_of(
    st.binary(max_size=1200),
    st.binary(max_size=60).map(lambda b: bytes([wire.RECORD_MESSAGE]) + b),
    st.binary(max_size=30).map(lambda b: bytes([wire.RECORD_ACK]) + b),
))
def test_any_record_bytes_decode_or_raise_wire_error_only(data):
    try:
        wire.decode_record(data)
    except wire.WireError:
        pass


def test_a_seq_beyond_what_the_history_can_store_is_a_wire_error():
    fragment = wire.MessageFragment(b"i" * 16, 2**63, 1, 0, 0, 1, b"x")
    header = struct.pack(">B16sQQQHH", wire.RECORD_MESSAGE, *fragment[:6]) + fragment.chunk
    with pytest.raises(wire.WireError):
        wire.decode_record(header)


def test_cookie_reply_round_trips_and_is_smaller_than_the_initiation_it_answers():
    reply = wire.encode_cookie_reply(7, b"n" * 24, b"c" * 32)
    assert wire.decode(reply) == wire.CookieReply(7, b"n" * 24, b"c" * 32)
    assert len(reply) < wire.INITIATION_SIZE  # no amplification towards a spoofed source
    for bad in (reply[:-1], reply + b"x"):
        with pytest.raises(wire.WireError):
            wire.decode(bad)
    with pytest.raises(wire.WireError):
        wire.encode_cookie_reply(7, b"n" * 23, b"c" * 32)


def test_initiation_macs_sit_at_its_end_and_start_as_zeros():
    init = wire.encode_initiation(7, b"e" * 32, b"s" * 48, b"t" * 24)
    assert len(init) == wire.INITIATION_SIZE == wire.INITIATION_MAC2_AT + wire.MAC_SIZE
    assert init[wire.INITIATION_MAC1_AT:] == bytes(2 * wire.MAC_SIZE)
    assert wire.decode(init[:wire.INITIATION_MAC1_AT] + b"1" * 16 + b"2" * 16).mac2 == b"2" * 16


def test_presence_records_round_trip_and_refuse_bad_status_or_size():
    for status in wire.PRESENCE_STATUSES:
        note = wire.PresenceNote(status, 1_700_000_000.25)
        assert wire.decode_record(wire.encode_presence(note)) == note
    good = wire.encode_presence(wire.PresenceNote("away", 1.0))
    for bad in (good[:-1], good + b"x", good[:1] + b"\x04" + good[2:], good[:1] + b"\x00" + good[2:]):
        with pytest.raises(wire.WireError):
            wire.decode_record(bad)
