"""KRPC message shapes (BEP 5): queries, responses, errors, compact encodings.

Only the wire format lives here; sending, timeouts and dispatch are in
`protocol.py`. Every decoder assumes hostile input and raises `MalformedMessage`
for anything that does not have the shape BEP 5 gives it.
"""

import socket
import struct

from kademlia import bencode

# BEP 5 error codes (BEP 44's own codes are in items.py).
GENERIC_ERROR = 201
SERVER_ERROR = 202
PROTOCOL_ERROR = 203
METHOD_UNKNOWN = 204

ID_LENGTH = 20
COMPACT_ADDR_LENGTH = 6
COMPACT_NODE_LENGTH = ID_LENGTH + COMPACT_ADDR_LENGTH
MAX_DATAGRAM = 1500


class MalformedMessage(ValueError):
    """A datagram that is not a valid KRPC message; it is dropped and counted."""


class KRPCError(Exception):
    """An error to answer a query with, or one a remote node answered with."""

    def __init__(self, code, message):
        super().__init__(f"{code} {message}")
        self.code = code
        self.message = message


class Query:
    __slots__ = ("transaction", "method", "args", "sender_id", "read_only")

    def __init__(self, transaction, method, args, sender_id, read_only):
        self.transaction = transaction
        self.method = method
        self.args = args
        self.sender_id = sender_id
        self.read_only = read_only


class Response:
    __slots__ = ("transaction", "values", "sender_id", "seen_address")

    def __init__(self, transaction, values, sender_id, seen_address):
        self.transaction = transaction
        self.values = values
        self.sender_id = sender_id
        self.seen_address = seen_address


class ErrorReply:
    __slots__ = ("transaction", "error")

    def __init__(self, transaction, error):
        self.transaction = transaction
        self.error = error


def encode_query(transaction, method, args, min_size=0, read_only=False):
    """A query of at least `min_size` bytes: short ones get a `pad` argument, which
    other nodes ignore. A node answers a source that has not proven its address
    with at most 3 times the query's bytes (as QUIC does, RFC 9000 section 8.1),
    so a query that expects a long answer pays for it in advance."""
    data = _query(transaction, method, args, read_only)
    short = min_size - len(data)
    if short <= 0:
        return data
    # `3:pad` and the length prefix take 7 or 8 bytes: never shorter than min_size.
    return _query(transaction, method, {**args, b"pad": b"\0" * max(0, short - 7)}, read_only)


# The envelopes are written out, keys in their sorted order, around the bencoded
# arguments or values: every datagram of a lookup is encoded here.

def _query(transaction, method, args, read_only=False):
    ro = b"2:roi1e" if read_only else b""  # BEP 43's flag, in the top-level dictionary
    return b"d1:a%s1:q%d:%s%s1:t%d:%s1:y1:qe" % (
        bencode.encode(args), len(method), method, ro, len(transaction), transaction)


def encode_response(transaction, values, requester_address):
    return b"d2:ip6:%s1:r%s1:t%d:%s1:y1:re" % (
        encode_address(requester_address), bencode.encode(values), len(transaction), transaction)


def encode_error(transaction, code, message):
    return bencode.encode({b"t": transaction, b"y": b"e", b"e": [code, message.encode()]})


def decode_message(data):
    """Parse one datagram into a Query, Response or ErrorReply."""
    if len(data) > MAX_DATAGRAM:
        raise MalformedMessage("datagram too large")
    try:
        message = bencode.decode(data)
    except bencode.DecodeError as e:
        raise MalformedMessage(f"bad bencode: {e}") from None
    if not isinstance(message, dict):
        raise MalformedMessage("message is not a dict")
    transaction = message.get(b"t")
    if not isinstance(transaction, bytes) or not 0 < len(transaction) <= 16:
        raise MalformedMessage("bad transaction id")
    kind = message.get(b"y")
    if kind == b"q":
        return _decode_query(transaction, message)
    if kind == b"r":
        return _decode_response(transaction, message)
    if kind == b"e":
        return _decode_error(transaction, message)
    raise MalformedMessage("unknown message type")


def _decode_query(transaction, message):
    method, args = message.get(b"q"), message.get(b"a")
    if not isinstance(method, bytes) or not isinstance(args, dict):
        raise MalformedMessage("query without method or arguments")
    sender_id = _node_id(args.get(b"id"))
    return Query(transaction, method, args, sender_id, message.get(b"ro") == 1)  # BEP 43: top level


def _decode_response(transaction, message):
    values = message.get(b"r")
    if not isinstance(values, dict):
        raise MalformedMessage("response without values")
    seen = message.get(b"ip")
    seen_address = None
    if isinstance(seen, bytes) and len(seen) == COMPACT_ADDR_LENGTH:
        seen_address = decode_address(seen)
    return Response(transaction, values, _node_id(values.get(b"id")), seen_address)


def _decode_error(transaction, message):
    body = message.get(b"e")
    if (
        not isinstance(body, list)
        or len(body) < 2
        or not isinstance(body[0], int)
        or not isinstance(body[1], bytes)
    ):
        raise MalformedMessage("bad error body")
    return ErrorReply(transaction, KRPCError(body[0], body[1].decode("utf-8", "replace")))


def _node_id(value):
    if not isinstance(value, bytes) or len(value) != ID_LENGTH:
        raise MalformedMessage("bad node id")
    return value


def encode_address(address):
    host, port = address
    return socket.inet_aton(host) + struct.pack("!H", port)


def decode_address(data):
    return socket.inet_ntoa(data[:4]), struct.unpack("!H", data[4:6])[0]


def encode_nodes(contacts):
    """Compact node info (BEP 5): 20-byte id + 6-byte address per node, from
    routing Contacts (which hold theirs encoded)."""
    return b"".join(c.compact for c in contacts)


def encode_node(node_id, address):
    return node_id + encode_address(address)


def decode_nodes(data):
    """[(node_id, (host, port))] from compact node info; bad entries are skipped."""
    return [node for node in map(decode_node, split_nodes(data)) if node is not None]


def split_nodes(data):
    """The 26-byte entries of compact node info, still encoded: a lookup decodes
    only those it has not seen."""
    if not isinstance(data, bytes) or len(data) % COMPACT_NODE_LENGTH:
        raise MalformedMessage("bad compact node info")
    return [data[offset : offset + COMPACT_NODE_LENGTH] for offset in range(0, len(data), COMPACT_NODE_LENGTH)]


def decode_node(entry):
    """(node_id, (host, port)) from one compact entry, or None if its address is unusable."""
    packed = entry[ID_LENGTH:]
    if not _packed_is_routable(packed):
        return None
    return entry[:ID_LENGTH], decode_address(packed)


def is_routable(address):
    """Whether `(host, port)` is an IPv4 address a node may be told to contact."""
    try:
        return _packed_is_routable(encode_address(address))
    except (OSError, TypeError, ValueError, struct.error):
        return False


def _packed_is_routable(packed):
    """is_routable on a compact address, without parsing text (this runs per node
    in every lookup response): not 0.0.0.0, not multicast/reserved/broadcast
    (224.0.0.0 and up), not port 0."""
    return packed[0] < 224 and packed[:4] != b"\0\0\0\0" and packed[4:6] != b"\0\0"
