"""The group records inside a session (kadchat.wire's records; types 0x0c..0x0f are ours):

    SUMMARY  0c | group id 16 | log length 2 | count 1 | count x (slot 2 | frontier seq 4)
    ENTRY    0d | group id 16 | one membership entry (kadchat.groups.membership)
    WANT     0e | group id 16 | kind 1 (0 log, 1 messages) | slot 2 | from 4
    MESSAGE  0f | one signed group message (kadchat.groups.messages)

A summary is what a member holds: how long its log is and, per author (by the slot
the log gave them), up to which seq it has every message. The other side asks with
WANT for what it lacks, and is answered with a page of ENTRYs or MESSAGEs; nothing
is acknowledged: the next summary asks again for what got lost.
"""

import struct
from typing import NamedTuple

from kadchat.groups.membership import GROUP_ID_SIZE

SUMMARY, ENTRY, WANT, MESSAGE = 0x0c, 0x0d, 0x0e, 0x0f
RECORD_TYPES = (SUMMARY, ENTRY, WANT, MESSAGE)
WANT_LOG, WANT_MESSAGES = 0, 1
MAX_SUMMARY_AUTHORS = 150  # 6 bytes each: a summary stays one datagram
_SUMMARY = struct.Struct(f">B{GROUP_ID_SIZE}sHB")
_PAIR = struct.Struct(">HI")
_WANT = struct.Struct(f">B{GROUP_ID_SIZE}sBHI")
_GROUP = struct.Struct(f">B{GROUP_ID_SIZE}s")


class SyncError(ValueError):
    pass


class Summary(NamedTuple):
    group_id: bytes
    log_length: int
    frontiers: dict  # slot -> seq


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
    pairs = sorted(summary.frontiers.items())[:MAX_SUMMARY_AUTHORS]
    return (_SUMMARY.pack(SUMMARY, summary.group_id, summary.log_length, len(pairs))
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
        _, gid, log_length, count = _SUMMARY.unpack_from(payload)
        if len(payload) != _SUMMARY.size + count * _PAIR.size:
            raise SyncError("summary size")
        pairs = [_PAIR.unpack_from(payload, _SUMMARY.size + i * _PAIR.size) for i in range(count)]
        return Summary(gid, log_length, dict(pairs))
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
