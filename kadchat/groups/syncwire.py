"""The group records inside a session (kadchat.wire's records; types 0x10..0x13 are ours):

    SUMMARY  0c | group id 16 | log length 2 | digest 16 | count 1 | count x (slot 2 | frontier seq 4)
    ENTRY    0d | group id 16 | one membership entry (kadchat.groups.membership)
    WANT     0e | group id 16 | kind 1 (0 log, 1 messages) | slot 2 | from 4
    MESSAGE  0f | one signed group message (kadchat.groups.messages)

A summary is what a member holds: how long its log is and, per author (by the slot
the log gave them), up to which seq it has every message (the frontiers), or only the
digest of those (count 0): members in sync exchange 36-byte records. A digest that
differs is answered with the full summary; the other side asks with WANT for what it
lacks, and is answered with a page of ENTRYs or MESSAGEs; nothing is acknowledged:
the next summary asks again for what got lost.
"""

import struct
from hashlib import blake2b
from typing import NamedTuple

from kadchat.groups.membership import GROUP_ID_SIZE

SUMMARY, ENTRY, WANT, MESSAGE = 0x10, 0x11, 0x12, 0x13  # file transfer has 0x07..0x0e
RECORD_TYPES = (SUMMARY, ENTRY, WANT, MESSAGE)
WANT_LOG, WANT_MESSAGES = 0, 1
MAX_SUMMARY_AUTHORS = 150  # 6 bytes each: a summary stays one datagram
DIGEST_SIZE = 16
_SUMMARY = struct.Struct(f">B{GROUP_ID_SIZE}sH{DIGEST_SIZE}sB")
_PAIR = struct.Struct(">HI")
_WANT = struct.Struct(f">B{GROUP_ID_SIZE}sBHI")
_GROUP = struct.Struct(f">B{GROUP_ID_SIZE}s")


class SyncError(ValueError):
    pass


class Summary(NamedTuple):
    group_id: bytes
    log_length: int
    digest: bytes  # of the frontiers, all of them
    frontiers: dict  # slot -> seq; empty in a digest-only summary
    full: bool


def summary(group_id, log_length, frontiers, full):
    pairs = sorted(frontiers.items())[:MAX_SUMMARY_AUTHORS]
    digest = blake2b(b"".join(_PAIR.pack(slot, seq) for slot, seq in pairs), digest_size=DIGEST_SIZE).digest()
    return Summary(group_id, log_length, digest, dict(pairs) if full else {}, full)


class Entry(NamedTuple):
    group_id: bytes
    data: bytes


class Want(NamedTuple):
    group_id: bytes
    kind: int
    slot: int
    start: int


class Message(NamedTuple):
    data: bytes


def encode_summary(summary):
    pairs = sorted(summary.frontiers.items()) if summary.full else []
    # A full summary of nothing still says "full" (count 0 with an all-zero digest would not): 0xff marks it.
    count = len(pairs) if pairs or not summary.full else 0xff
    return (_SUMMARY.pack(SUMMARY, summary.group_id, summary.log_length, summary.digest, count)
            + b"".join(_PAIR.pack(slot, seq) for slot, seq in pairs))


def encode_entry(group_id, data):
    return _GROUP.pack(ENTRY, group_id) + data


def encode_want(want):
    return _WANT.pack(WANT, *want)


def encode_message(data):
    return bytes([MESSAGE]) + data


def decode(payload):
    kind = payload[0]
    if kind == SUMMARY:
        if len(payload) < _SUMMARY.size:
            raise SyncError("short summary")
        _, gid, log_length, digest, count = _SUMMARY.unpack_from(payload)
        if count == 0xff:
            if len(payload) != _SUMMARY.size:
                raise SyncError("summary size")
            return Summary(gid, log_length, digest, {}, True)
        if count > MAX_SUMMARY_AUTHORS or len(payload) != _SUMMARY.size + count * _PAIR.size:
            raise SyncError("summary size")
        pairs = [_PAIR.unpack_from(payload, _SUMMARY.size + i * _PAIR.size) for i in range(count)]
        return Summary(gid, log_length, digest, dict(pairs), count > 0)
    if kind == ENTRY:
        if len(payload) <= _GROUP.size:
            raise SyncError("short entry record")
        return Entry(payload[1:_GROUP.size], payload[_GROUP.size:])
    if kind == WANT:
        if len(payload) != _WANT.size:
            raise SyncError("want size")
        want = Want(*_WANT.unpack(payload)[1:])
        if want.kind not in (WANT_LOG, WANT_MESSAGES):
            raise SyncError("want kind")
        return want
    if kind == MESSAGE:
        return Message(payload[1:])
    raise SyncError(f"not a group record {kind:#04x}")
