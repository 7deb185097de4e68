"""A group message: signed by its author, placed in the group's DAG, in one total order.

    group id 16 | author 32 | seq 4 | lamport 8 | time ms 8 | epoch 2 | head count 1
    | heads 16 each | text (UTF-8) | signature 64

`seq` numbers the author's messages in the group from 1; `lamport` is one more than
the largest clock the author had seen in the group; `heads` are the ids of the latest
messages the author had seen that no other message it had seen followed (the DAG's
edges); `epoch` is the length of the membership log the author had, which decides
whether the author was a member. The id is the first 16 bytes of the BLAKE2b hash of
the whole signed message. Every member sorts by (lamport, author, seq): the same
messages give the same order everywhere, whatever order they arrived in.
"""

import struct
from dataclasses import dataclass
from hashlib import blake2b

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from kadchat.groups.membership import GROUP_ID_SIZE, KEY_SIZE, SIGNATURE_SIZE

MESSAGE_ID_SIZE = 16
MAX_HEADS = 4
MAX_TEXT_BYTES = 900  # one message, one datagram (wire.MAX_RECORD with every field)
_DOMAIN = b"kadchat-group-message"
_HEAD = struct.Struct(f">{GROUP_ID_SIZE}s{KEY_SIZE}sIQQHB")


class MessageError(ValueError):
    """Not a well-formed, well-signed group message."""


@dataclass(frozen=True)
class GroupMessage:
    group_id: bytes
    author: bytes
    seq: int
    lamport: int
    time_ms: int
    epoch: int
    heads: tuple
    text: str
    signature: bytes = b""

    def body(self):
        return (_HEAD.pack(self.group_id, self.author, self.seq, self.lamport, self.time_ms, self.epoch,
                           len(self.heads)) + b"".join(self.heads) + self.text.encode("utf-8"))

    def encode(self):
        return self.body() + self.signature

    @property
    def id(self):
        return blake2b(self.encode(), digest_size=MESSAGE_ID_SIZE).digest()

    @property
    def order(self):
        return (self.lamport, self.author, self.seq)


def sign(message, signing_key):
    return GroupMessage(**{**message.__dict__, "signature": signing_key.sign(_DOMAIN + message.body()).signature})


def decode(data):
    """A message whose signature verifies (against its author field), else MessageError."""
    if len(data) < _HEAD.size + SIGNATURE_SIZE:
        raise MessageError("short group message")
    group_id, author, seq, lamport, time_ms, epoch, head_count = _HEAD.unpack_from(data)
    text_at = _HEAD.size + head_count * MESSAGE_ID_SIZE
    if head_count > MAX_HEADS or len(data) < text_at + SIGNATURE_SIZE or seq < 1:
        raise MessageError("group message fields")
    heads = tuple(bytes(data[i:i + MESSAGE_ID_SIZE]) for i in range(_HEAD.size, text_at, MESSAGE_ID_SIZE))
    try:
        text = bytes(data[text_at:-SIGNATURE_SIZE]).decode("utf-8")
    except UnicodeDecodeError:
        raise MessageError("group message text") from None
    if not 0 < len(text.encode("utf-8")) <= MAX_TEXT_BYTES:
        raise MessageError("group message text size")
    message = GroupMessage(group_id, author, seq, lamport, time_ms, epoch, heads, text, bytes(data[-SIGNATURE_SIZE:]))
    try:
        VerifyKey(author).verify(_DOMAIN + message.body(), message.signature)
    except (BadSignatureError, ValueError):
        raise MessageError("bad signature") from None
    return message
