"""Chat datagram formats: the outer datagrams and the records sealed inside them.

Chat datagrams share the DHT's UDP socket; their first byte is a type in
0x01..0x0f (docs/INTERFACES.md; 0x10..0x1f are NAT traversal's, kadchat.nat.natwire),
never `d` (bencoded KRPC). Every field has a
fixed size, integers are big-endian, and a decoder given anything malformed
raises `WireError` and nothing else (the bytes come from strangers).

Outer datagrams (DESIGN.md "Direct chat"):

    INITIATION       01 | sender index 4 | ephemeral 32 | sealed static 48 | sealed timestamp 24
                        | mac1 16 | mac2 16
    RESPONSE         02 | sender index 4 | receiver index 4 | ephemeral 32 | sealed empty 16
    TRANSPORT        03 | receiver index 4 | counter 8 | sealed record (>= 16)
    UNKNOWN_SESSION  04 | receiver index 4 | reset token 16   (answer to a TRANSPORT for an index
                          we don't know; the token proves it is the index's owner, see RESET)
    COOKIE_REPLY     05 | receiver index 4 | nonce 24 | sealed cookie 32   (answer to an INITIATION
                          when under load: send it again with mac2; kadchat.cookies)

An INITIATION's mac1 proves the sender knows our identity key, mac2 (zeros
unless we asked for a cookie) that it can receive at its address; both are
outside the handshake transcript (kadchat.cookies computes them).

Records, the plaintext of a TRANSPORT (empty = keepalive / handshake confirmation):

    MESSAGE  01 | message id 16 | seq 8 | base 8 | timestamp us 8 | index 2 | count 2 | chunk
    ACK      02 | message id 16 | count 2 | bitmap of received fragments, ceil(count / 8) bytes
    PRESENCE 03 | status 1 (1 online, 2 away, 3 offline: goodbye) | sender's unix time ms 8
                  (kadchat.liveness: hello, keep-alive, goodbye; never acknowledged)
    SECRET   04 | the sender's presence secret 32 (kadchat.presencesecret: sent when a session
                  comes up and when the secret rotates; never acknowledged)
    RESET    05 | reset token 16: what the sender's UNKNOWN_SESSION for its index of this session
                  will carry, a keyed hash of the index under a key only its identity gives
                  (kadchat.sessions), so it survives the restart that loses the session; sent
                  once when a session comes up

    FILE_*   07..0e  file transfer records (kadchat.transfer.frames: offer, answer, leaf hashes,
                  data, ack, cancel, done), handed whole to kadchat.transfer

A REQUEST (06, kadchat.requestwire) is a contact request, outside any session.
"""

import struct
from typing import NamedTuple

INITIATION = 0x01
RESPONSE = 0x02
TRANSPORT = 0x03
UNKNOWN_SESSION = 0x04
COOKIE_REPLY = 0x05
SESSION_TYPES = range(0x01, 0x10)  # ours; NAT traversal has 0x10..0x1f

KEY_SIZE = 32
TAG_SIZE = 16
COUNTER_SIZE = 8
MAC_SIZE = 16
COOKIE_NONCE_SIZE = 24
MAX_DATAGRAM = 1200  # stays under common path MTUs, with room for a relay header

RECORD_MESSAGE = 0x01
RECORD_ACK = 0x02
RECORD_PRESENCE = 0x03
RECORD_SECRET = 0x04
FILE_RECORDS = range(0x07, 0x0f)  # kadchat.transfer.frames decodes them
SECRET_SIZE = 32
RECORD_RESET = 0x05
RESET_TOKEN_SIZE = 16
PRESENCE_STATUSES = ("online", "away", "offline")  # on the wire as 1, 2, 3
MESSAGE_ID_SIZE = 16
MAX_SEQ = 2**63 - 1  # SQLite integers are signed 64-bit; the history stores seq
MAX_TEXT_BYTES = 64 * 1024
CHUNK_SIZE = 1024
MAX_FRAGMENTS = -(-MAX_TEXT_BYTES // CHUNK_SIZE)

_INITIATION = struct.Struct(f">BI{KEY_SIZE}s{KEY_SIZE + TAG_SIZE}s{8 + TAG_SIZE}s{MAC_SIZE}s{MAC_SIZE}s")
INITIATION_MAC1_AT = _INITIATION.size - 2 * MAC_SIZE  # mac1 covers the bytes before it
INITIATION_MAC2_AT = _INITIATION.size - MAC_SIZE  # mac2 covers the bytes before it, mac1 included
INITIATION_SIZE = _INITIATION.size
NO_MAC = bytes(MAC_SIZE)
_RESPONSE = struct.Struct(f">BII{KEY_SIZE}s{TAG_SIZE}s")
_TRANSPORT_HEADER = struct.Struct(">BIQ")
_UNKNOWN_SESSION = struct.Struct(f">BI{RESET_TOKEN_SIZE}s")
_COOKIE_REPLY = struct.Struct(f">BI{COOKIE_NONCE_SIZE}s{MAC_SIZE + TAG_SIZE}s")
_MESSAGE_HEADER = struct.Struct(f">B{MESSAGE_ID_SIZE}sQQQHH")
_ACK_HEADER = struct.Struct(f">B{MESSAGE_ID_SIZE}sH")
_PRESENCE = struct.Struct(">BBQ")

TRANSPORT_HEADER_SIZE = _TRANSPORT_HEADER.size
TRANSPORT_OVERHEAD = TRANSPORT_HEADER_SIZE + TAG_SIZE
MAX_RECORD = MAX_DATAGRAM - TRANSPORT_OVERHEAD
assert _MESSAGE_HEADER.size + CHUNK_SIZE <= MAX_RECORD


class WireError(ValueError):
    """A datagram or record that is not well formed."""


class Initiation(NamedTuple):
    sender_index: int
    ephemeral: bytes
    sealed_static: bytes
    sealed_timestamp: bytes
    mac1: bytes = NO_MAC
    mac2: bytes = NO_MAC


class Response(NamedTuple):
    sender_index: int
    receiver_index: int
    ephemeral: bytes
    sealed_empty: bytes


class Transport(NamedTuple):
    receiver_index: int
    counter: int
    header: bytes  # authenticated as associated data
    sealed: bytes


class UnknownSession(NamedTuple):
    receiver_index: int
    token: bytes  # the reset token of the index (RESET)


class CookieReply(NamedTuple):
    receiver_index: int  # the sender index of the initiation it answers
    nonce: bytes
    sealed_cookie: bytes


class MessageFragment(NamedTuple):
    message_id: bytes
    seq: int  # per-conversation order, from 1
    base: int  # sender's lowest unacknowledged seq: everything below is delivered
    timestamp_us: int
    index: int
    count: int
    chunk: bytes


class Ack(NamedTuple):
    message_id: bytes
    count: int
    received: int  # bit i set = fragment i held; all bits = stored durably

    @property
    def complete(self):
        return self.received == (1 << self.count) - 1


def is_session_datagram(data):
    return len(data) > 0 and data[0] in SESSION_TYPES


# -- outer datagrams ---------------------------------------------------------


def initiation_header(sender_index):
    return struct.pack(">BI", INITIATION, sender_index)


def encode_initiation(sender_index, ephemeral, sealed_static, sealed_timestamp):
    """With both macs zero: kadchat.cookies fills them in."""
    _check_sizes(ephemeral, KEY_SIZE, sealed_static, KEY_SIZE + TAG_SIZE, sealed_timestamp, 8 + TAG_SIZE)
    return _INITIATION.pack(INITIATION, sender_index, ephemeral, sealed_static, sealed_timestamp, NO_MAC, NO_MAC)


def response_header(sender_index, receiver_index):
    return struct.pack(">BII", RESPONSE, sender_index, receiver_index)


def encode_response(sender_index, receiver_index, ephemeral, sealed_empty):
    _check_sizes(ephemeral, KEY_SIZE, sealed_empty, TAG_SIZE)
    return _RESPONSE.pack(RESPONSE, sender_index, receiver_index, ephemeral, sealed_empty)


def transport_header(receiver_index, counter):
    return _TRANSPORT_HEADER.pack(TRANSPORT, receiver_index, counter)


def encode_unknown_session(receiver_index, token):
    _check_sizes(token, RESET_TOKEN_SIZE)
    return _UNKNOWN_SESSION.pack(UNKNOWN_SESSION, receiver_index, token)


def encode_cookie_reply(receiver_index, nonce, sealed_cookie):
    _check_sizes(nonce, COOKIE_NONCE_SIZE, sealed_cookie, MAC_SIZE + TAG_SIZE)
    return _COOKIE_REPLY.pack(COOKIE_REPLY, receiver_index, nonce, sealed_cookie)


def decode(data):
    """Parse one chat datagram into Initiation | Response | Transport | UnknownSession | CookieReply."""
    if not data:
        raise WireError("empty datagram")
    kind = data[0]
    size = len(data)
    if kind == TRANSPORT:
        if not TRANSPORT_OVERHEAD <= size <= MAX_DATAGRAM:
            raise WireError(f"transport datagram of {size} bytes")
        header = bytes(data[:TRANSPORT_HEADER_SIZE])
        _, index, counter = _TRANSPORT_HEADER.unpack(header)
        return Transport(index, counter, header, bytes(data[TRANSPORT_HEADER_SIZE:]))
    if kind == INITIATION:
        _expect_size(size, _INITIATION.size, "initiation")
        return Initiation(*_INITIATION.unpack(data)[1:])
    if kind == RESPONSE:
        _expect_size(size, _RESPONSE.size, "response")
        return Response(*_RESPONSE.unpack(data)[1:])
    if kind == UNKNOWN_SESSION:
        _expect_size(size, _UNKNOWN_SESSION.size, "unknown-session notice")
        return UnknownSession(*_UNKNOWN_SESSION.unpack(data)[1:])
    if kind == COOKIE_REPLY:
        _expect_size(size, _COOKIE_REPLY.size, "cookie reply")
        return CookieReply(*_COOKIE_REPLY.unpack(data)[1:])
    raise WireError(f"unknown chat datagram type {kind:#04x}")


# -- sealed records -----------------------------------------------------------


def encode_fragment(fragment):
    f = fragment
    if not (0 <= f.index < f.count <= MAX_FRAGMENTS and 0 < len(f.chunk) <= CHUNK_SIZE and f.seq <= MAX_SEQ):
        raise WireError("fragment out of range")
    header = _MESSAGE_HEADER.pack(RECORD_MESSAGE, f.message_id, f.seq, f.base, f.timestamp_us, f.index, f.count)
    return header + f.chunk


def encode_ack(ack):
    if not 1 <= ack.count <= MAX_FRAGMENTS or ack.received >> ack.count:
        raise WireError("ack out of range")
    return _ACK_HEADER.pack(RECORD_ACK, ack.message_id, ack.count) + ack.received.to_bytes(_bitmap_size(ack.count), "little")


class PresenceNote(NamedTuple):
    status: str  # one of PRESENCE_STATUSES
    time: float  # the sender's unix time


def encode_presence(note):
    return _PRESENCE.pack(RECORD_PRESENCE, PRESENCE_STATUSES.index(note.status) + 1, int(note.time * 1000))


class SecretNote(NamedTuple):
    secret: bytes  # the sender's presence secret


def encode_secret(note):
    _check_sizes(note.secret, SECRET_SIZE)
    return bytes([RECORD_SECRET]) + note.secret


def encode_reset(token):
    _check_sizes(token, RESET_TOKEN_SIZE)
    return bytes([RECORD_RESET]) + token


def is_reset(payload):
    """Whether a TRANSPORT's plaintext is a RESET record (kadchat.sessions keeps those)."""
    return len(payload) == 1 + RESET_TOKEN_SIZE and payload[0] == RECORD_RESET


def decode_record(payload):
    """Parse a TRANSPORT's plaintext: MessageFragment | Ack | PresenceNote | SecretNote | None
    (keepalive)."""
    if not payload:
        return None
    kind = payload[0]
    if kind == RECORD_MESSAGE:
        if len(payload) <= _MESSAGE_HEADER.size or len(payload) > _MESSAGE_HEADER.size + CHUNK_SIZE:
            raise WireError("message record size")
        _, message_id, seq, base, timestamp_us, index, count = _MESSAGE_HEADER.unpack_from(payload)
        chunk = bytes(payload[_MESSAGE_HEADER.size:])
        if not (1 <= base <= seq <= MAX_SEQ and 0 <= index < count <= MAX_FRAGMENTS):
            raise WireError("message record fields out of range")
        if index < count - 1 and len(chunk) != CHUNK_SIZE:
            raise WireError("short inner fragment")
        return MessageFragment(message_id, seq, base, timestamp_us, index, count, chunk)
    if kind == RECORD_ACK:
        if len(payload) < _ACK_HEADER.size:
            raise WireError("ack record size")
        _, message_id, count = _ACK_HEADER.unpack_from(payload)
        bitmap = payload[_ACK_HEADER.size:]
        if not 1 <= count <= MAX_FRAGMENTS or len(bitmap) != _bitmap_size(count):
            raise WireError("ack record fields out of range")
        received = int.from_bytes(bitmap, "little")
        if received >> count:
            raise WireError("ack bitmap names missing fragments")
        return Ack(message_id, count, received)
    if kind == RECORD_PRESENCE:
        if len(payload) != _PRESENCE.size:
            raise WireError("presence record size")
        _, status, millis = _PRESENCE.unpack(payload)
        if not 1 <= status <= len(PRESENCE_STATUSES):
            raise WireError("presence record status")
        return PresenceNote(PRESENCE_STATUSES[status - 1], millis / 1000)
    if kind == RECORD_SECRET:
        _expect_size(len(payload), 1 + SECRET_SIZE, "secret record")
        return SecretNote(bytes(payload[1:]))
    raise WireError(f"unknown record type {kind:#04x}")


def _bitmap_size(count):
    return (count + 7) // 8


def _expect_size(size, expected, what):
    if size != expected:
        raise WireError(f"{what} of {size} bytes, expected {expected}")


def _check_sizes(*pairs):
    for value, size in zip(pairs[::2], pairs[1::2]):
        if len(value) != size:
            raise WireError("field of wrong size")
