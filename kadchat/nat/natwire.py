"""NAT traversal datagrams: registration with an introducer, introductions, relay.

They share the node's socket with KRPC (`d`) and the chat datagrams (0x01..0x0f);
their first byte is in 0x10..0x1f. A *tag* is 16 bytes hashed from a client's
blinded public key for the epoch (kadchat.nat.regproof), so only its contacts
can compute it from the card: the introducer knows a tag's current address,
never whose it is, and cannot link one epoch's tag to the next.

    REGISTER      10 | tag 16 | cookie 8 | blinded key 32 | signature 64
                                                              client -> introducer, every ~20 s
    REGISTERED    11 | tag 16 | observed address 6 | cookie 8 introducer -> client
    INTRODUCE     12 | callee tag 16 | payload                caller -> introducer
    INTRODUCTION  13 | caller address 6 | payload             introducer -> callee
    RELAY         14 | to tag 16 | from tag 16 | payload      client -> introducer
    RELAYED       15 | from tag 16 | payload                  introducer -> client

A registration takes a round trip: the introducer answers any REGISTER with a
*cookie* (a keyed hash of the address it came from), and registers the tag only
when a REGISTER echoes a valid one, so nobody can register a tag at an address
they cannot receive at. A REGISTER also proves ownership of its tag: the tag
is BLAKE2b-128(blinded key, person "kadchat-rendezv") and the signature, by the
blinded private key, covers "kadchat-register" || tag || cookie. The
introducer checks the proof after the cookie, and only for a new tag or a tag
moving to another address: keep-alives cost no signature check. The payload of INTRODUCE/INTRODUCTION is the caller's
handshake initiation;
that of RELAY/RELAYED any sealed chat datagram. Decoders raise `NatWireError`
and nothing else.
"""

from typing import NamedTuple

from kademlia.krpc import decode_address, encode_address

REGISTER = 0x10
REGISTERED = 0x11
INTRODUCE = 0x12
INTRODUCTION = 0x13
RELAY = 0x14
RELAYED = 0x15
NAT_TYPES = range(0x10, 0x20)

TAG_SIZE = 16
ADDRESS_SIZE = 6
COOKIE_SIZE = 8
KEY_SIZE = 32
SIGNATURE_SIZE = 64
NO_COOKIE = bytes(COOKIE_SIZE)
MAX_PAYLOAD = 1200


class NatWireError(ValueError):
    """A NAT datagram that is not well formed."""


class Register(NamedTuple):
    tag: bytes
    cookie: bytes = NO_COOKIE  # as last given by this introducer; none on first contact
    key: bytes = bytes(KEY_SIZE)  # the blinded public key the tag comes from
    signature: bytes = bytes(SIGNATURE_SIZE)  # by that key, over the tag and cookie (kadchat.nat.regproof)


class Registered(NamedTuple):
    tag: bytes
    observed: tuple
    cookie: bytes  # proof of the address: echoed in the next REGISTER


class Introduce(NamedTuple):
    callee_tag: bytes
    payload: bytes


class Introduction(NamedTuple):
    caller: tuple
    payload: bytes


class Relay(NamedTuple):
    to_tag: bytes
    from_tag: bytes
    payload: bytes


class Relayed(NamedTuple):
    from_tag: bytes
    payload: bytes


def encode(message):
    if isinstance(message, Register):
        return (bytes([REGISTER]) + _tag(message.tag) + _cookie(message.cookie)
                + _sized(message.key, KEY_SIZE, "blinded key") + _sized(message.signature, SIGNATURE_SIZE, "signature"))
    if isinstance(message, Registered):
        return bytes([REGISTERED]) + _tag(message.tag) + encode_address(message.observed) + _cookie(message.cookie)
    if isinstance(message, Introduce):
        return bytes([INTRODUCE]) + _tag(message.callee_tag) + _payload(message.payload)
    if isinstance(message, Introduction):
        return bytes([INTRODUCTION]) + encode_address(message.caller) + _payload(message.payload)
    if isinstance(message, Relay):
        return bytes([RELAY]) + _tag(message.to_tag) + _tag(message.from_tag) + _payload(message.payload)
    if isinstance(message, Relayed):
        return bytes([RELAYED]) + _tag(message.from_tag) + _payload(message.payload)
    raise TypeError(f"not a NAT message: {message!r}")


def decode(data):
    if not data:
        raise NatWireError("empty datagram")
    kind, body = data[0], bytes(data[1:])
    if kind == REGISTER and len(body) == TAG_SIZE + COOKIE_SIZE + KEY_SIZE + SIGNATURE_SIZE:
        key_start = TAG_SIZE + COOKIE_SIZE
        signature_start = key_start + KEY_SIZE
        return Register(body[:TAG_SIZE], body[TAG_SIZE:key_start], body[key_start:signature_start],
                        body[signature_start:])
    if kind == REGISTERED and len(body) == TAG_SIZE + ADDRESS_SIZE + COOKIE_SIZE:
        address_end = TAG_SIZE + ADDRESS_SIZE
        return Registered(body[:TAG_SIZE], decode_address(body[TAG_SIZE:address_end]), body[address_end:])
    if kind == INTRODUCE and TAG_SIZE < len(body) <= TAG_SIZE + MAX_PAYLOAD:
        return Introduce(body[:TAG_SIZE], body[TAG_SIZE:])
    if kind == INTRODUCTION and ADDRESS_SIZE < len(body) <= ADDRESS_SIZE + MAX_PAYLOAD:
        return Introduction(decode_address(body[:ADDRESS_SIZE]), body[ADDRESS_SIZE:])
    if kind == RELAY and 2 * TAG_SIZE < len(body) <= 2 * TAG_SIZE + MAX_PAYLOAD:
        return Relay(body[:TAG_SIZE], body[TAG_SIZE : 2 * TAG_SIZE], body[2 * TAG_SIZE :])
    if kind == RELAYED and TAG_SIZE < len(body) <= TAG_SIZE + MAX_PAYLOAD:
        return Relayed(body[:TAG_SIZE], body[TAG_SIZE:])
    raise NatWireError(f"bad NAT datagram (type {kind:#04x}, {len(data)} bytes)")


def _tag(tag):
    return _sized(tag, TAG_SIZE, "tag")


def _cookie(cookie):
    return _sized(cookie, COOKIE_SIZE, "cookie")


def _sized(value, size, name):
    if len(value) != size:
        raise ValueError(f"{name} must be {size} bytes")
    return value


def _payload(payload):
    if not 0 < len(payload) <= MAX_PAYLOAD:
        raise ValueError("payload size out of range")
    return payload
