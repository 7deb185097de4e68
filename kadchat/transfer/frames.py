"""The file records: what travels sealed inside a session's TRANSPORT datagrams.

Record types 0x07..0x0e (kadchat.wire lists them beside the chat records).
Integers are big-endian; `transfer` is the sender's random 8-byte id; a
decoder given anything malformed raises `wire.WireError` and nothing else.

    OFFER   07 | transfer 8 | size 8 | chunk size 4 | root 32 | flags 1 | name (UTF-8, 1..255)
                 flags bit 0: the sender lets this file travel through a relay above the cap
    ANSWER  08 | transfer 8 | first byte 4 | page of the receiver's chunk bitmap (0..1024)
                 "send what I lack": an accept, and again after either side restarts
    GET     09 | transfer 8 | first leaf 4 | count 2          (the receiver asks for leaf hashes)
    LEAVES  0a | transfer 8 | first leaf 4 | hashes 32 each (1..32)
    DATA    0b | transfer 8 | chunk 4 | piece 2 | sender's time us 8 | bytes (1..1024)
    ACK     0c | transfer 8 | chunk 4 | verdict 1 | echoed time us 8 | one-way delay us 8 (signed)
                 | pieces of the chunk held 32 (a bitmap of 256)
                 verdict 0 partial, 1 verified and kept, 2 failed its hash: send it again
    CANCEL  0d | transfer 8 | reason 1
    DONE    0e | transfer 8                                (the receiver has it all, verified)
"""

import struct
from typing import NamedTuple

from kadchat import wire
from kadchat.wire import WireError

from .merkle import CHUNK_SIZE, HASH_SIZE

OFFER, ANSWER, GET, LEAVES, DATA, ACK, CANCEL, DONE = range(0x07, 0x0f)
assert range(OFFER, DONE + 1) == wire.FILE_RECORDS
PIECE_SIZE = 1024
PIECES = CHUNK_SIZE // PIECE_SIZE  # 256 per chunk: the ACK's 32-byte bitmap
MAX_NAME = 255
MAX_PAGE = 1024
LEAVES_PER_RECORD = 32
FLAG_RELAY_OK = 1
PARTIAL, KEPT, BAD = 0, 1, 2
REASONS = {1: "cancelled", 2: "over the relay cap", 3: "unknown transfer", 4: "file changed",
           5: "bad leaf hashes", 6: "cannot write"}
CANCELLED, RELAY_CAP, UNKNOWN, CHANGED, BAD_LEAVES, NO_SPACE = range(1, 7)

_OFFER = struct.Struct(f">B8sQI{HASH_SIZE}sB")
_ANSWER = struct.Struct(">B8sI")
_GET = struct.Struct(">B8sIH")
_LEAVES = struct.Struct(">B8sI")
_DATA = struct.Struct(">B8sIHQ")
_ACK = struct.Struct(f">B8sIBQq{PIECES // 8}s")
_CANCEL = struct.Struct(">B8sB")
_DONE = struct.Struct(">B8s")


class Offer(NamedTuple):
    transfer: bytes
    size: int
    chunk_size: int
    root: bytes
    flags: int
    name: str


class Answer(NamedTuple):
    transfer: bytes
    first_byte: int
    page: bytes


class Get(NamedTuple):
    transfer: bytes
    first: int
    count: int


class Leaves(NamedTuple):
    transfer: bytes
    first: int
    hashes: tuple


class Data(NamedTuple):
    transfer: bytes
    chunk: int
    piece: int
    sent_us: int
    data: bytes


class Ack(NamedTuple):
    transfer: bytes
    chunk: int
    verdict: int
    echo_us: int
    delay_us: int
    pieces: int  # bit i: piece i held


class Cancel(NamedTuple):
    transfer: bytes
    reason: int


class Done(NamedTuple):
    transfer: bytes


def encode(record) -> bytes:
    r = record
    if isinstance(r, Offer):
        name = r.name.encode("utf-8")
        if not 0 < len(name) <= MAX_NAME:
            raise WireError("offered name length")
        return _OFFER.pack(OFFER, r.transfer, r.size, r.chunk_size, r.root, r.flags) + name
    if isinstance(r, Answer):
        return _ANSWER.pack(ANSWER, r.transfer, r.first_byte) + r.page[:MAX_PAGE]
    if isinstance(r, Get):
        return _GET.pack(GET, r.transfer, r.first, r.count)
    if isinstance(r, Leaves):
        return _LEAVES.pack(LEAVES, r.transfer, r.first) + b"".join(r.hashes)
    if isinstance(r, Data):
        return _DATA.pack(DATA, r.transfer, r.chunk, r.piece, r.sent_us) + r.data
    if isinstance(r, Ack):
        return _ACK.pack(ACK, r.transfer, r.chunk, r.verdict, r.echo_us, r.delay_us,
                         r.pieces.to_bytes(PIECES // 8, "little"))
    if isinstance(r, Cancel):
        return _CANCEL.pack(CANCEL, r.transfer, r.reason)
    if isinstance(r, Done):
        return _DONE.pack(DONE, r.transfer)
    raise TypeError(record)


def decode(payload: bytes):
    kind, size = payload[0], len(payload)
    if kind == DATA:
        if not _DATA.size < size <= _DATA.size + PIECE_SIZE:
            raise WireError("file data size")
        _, transfer, chunk, piece, sent_us = _DATA.unpack_from(payload)
        if piece >= PIECES:
            raise WireError("piece out of range")
        return Data(transfer, chunk, piece, sent_us, bytes(payload[_DATA.size:]))
    if kind == ACK:
        _exact(size, _ACK.size, "file ack")
        _, transfer, chunk, verdict, echo, delay, bits = _ACK.unpack(payload)
        if verdict not in (PARTIAL, KEPT, BAD):
            raise WireError("ack verdict")
        return Ack(transfer, chunk, verdict, echo, delay, int.from_bytes(bits, "little"))
    if kind == OFFER:
        if not _OFFER.size < size <= _OFFER.size + MAX_NAME:
            raise WireError("offer size")
        _, transfer, file_size, chunk_size, root, flags = _OFFER.unpack_from(payload)
        try:
            name = bytes(payload[_OFFER.size:]).decode("utf-8")
        except UnicodeDecodeError:
            raise WireError("offered name is not UTF-8") from None
        if chunk_size != CHUNK_SIZE or file_size >= 2**62:
            raise WireError("offer chunk size or file size")
        return Offer(transfer, file_size, chunk_size, root, flags, name)
    if kind == ANSWER:
        if not _ANSWER.size <= size <= _ANSWER.size + MAX_PAGE:
            raise WireError("answer size")
        _, transfer, first = _ANSWER.unpack_from(payload)
        return Answer(transfer, first, bytes(payload[_ANSWER.size:]))
    if kind == GET:
        _exact(size, _GET.size, "leaf request")
        _, transfer, first, count = _GET.unpack(payload)
        if not 0 < count <= LEAVES_PER_RECORD:
            raise WireError("leaf request count")
        return Get(transfer, first, count)
    if kind == LEAVES:
        body = size - _LEAVES.size
        if body <= 0 or body % HASH_SIZE or body > LEAVES_PER_RECORD * HASH_SIZE:
            raise WireError("leaves size")
        _, transfer, first = _LEAVES.unpack_from(payload)
        data = payload[_LEAVES.size:]
        return Leaves(transfer, first, tuple(bytes(data[i:i + HASH_SIZE]) for i in range(0, body, HASH_SIZE)))
    if kind == CANCEL:
        _exact(size, _CANCEL.size, "cancel")
        _, transfer, reason = _CANCEL.unpack(payload)
        return Cancel(transfer, reason)
    if kind == DONE:
        _exact(size, _DONE.size, "done")
        return Done(_DONE.unpack(payload)[1])
    raise WireError(f"not a file record: {kind:#04x}")


def _exact(size, expected, what):
    if size != expected:
        raise WireError(f"{what} of {size} bytes")
