"""Contact requests on the wire: what someone with only our card sends to ask to become a contact.

    REQUEST  06 | sealed (anonymous sealed box to the callee's X25519 key, 48 bytes overhead):
                  requester's identity key 32 | signature 64 | timestamp ms 8 | name length 1
                  | name | note length 2 | note | zero padding to PADDED_SIZE

It travels like an initiation: to the callee's request tag at the introducers
its request point lists (kadchat.presence), which pass it on with the sender's
address. Nobody but the callee can read who asks or what they wrote; the
signature, by the requester's identity key over "kadchat-request" || callee
key || timestamp || name || note, proves the card is the requester's (nobody
can ask in someone else's name). The timestamp bounds a replay to
`WINDOW` seconds, and a replayed request only repeats the same words, which
the rate limits of kadchat.contactrequests absorb. Requests are never
answered: a stranger learns nothing from sending one, not even that we read
it. The fixed size says nothing about the note's length.
"""

import struct

from nacl.exceptions import BadSignatureError, CryptoError
from nacl.public import SealedBox
from nacl.signing import VerifyKey

from kadchat.cookies import TokenBucket
from kadchat.files import MAX_NAME_CHARS

REQUEST = 0x06
MAX_NAME_BYTES = MAX_NAME_CHARS * 4  # that many characters of UTF-8
MAX_NOTE_BYTES = 300
PADDED_SIZE = 32 + 64 + 8 + 1 + MAX_NAME_BYTES + 2 + MAX_NOTE_BYTES
SIZE = 1 + 48 + PADDED_SIZE  # 48: the sealed box's ephemeral key and tag
WINDOW = 120.0  # seconds a request stays acceptable, either side of now
OPENS_PER_SECOND = 5.0  # requests we spend a DH and a signature check on, whoever sends them
OPENS_BURST = 10
_CONTEXT = b"kadchat-request"


class RequestError(ValueError):
    """A REQUEST that is not a valid, fresh request to us."""


def _signed_part(callee_key, millis, name, note):
    return _CONTEXT + callee_key + struct.pack(">Q", millis) + name + b"\0" + note


def make_request(signing_key, callee_key, name, note, now):
    """The REQUEST datagram from `signing_key`'s identity to `callee_key`; ValueError if the
    name or note is too long."""
    name, note = name.encode("utf-8"), note.encode("utf-8")
    if len(name) > MAX_NAME_BYTES or len(note) > MAX_NOTE_BYTES:
        raise ValueError(f"a note is at most {MAX_NOTE_BYTES} bytes")
    millis = int(now * 1000)
    signature = signing_key.sign(_signed_part(callee_key, millis, name, note)).signature
    body = (bytes(signing_key.verify_key) + signature + struct.pack(">QB", millis, len(name)) + name
            + struct.pack(">H", len(note)) + note)
    sealed = SealedBox(VerifyKey(callee_key).to_curve25519_public_key()).encrypt(body + bytes(PADDED_SIZE - len(body)))
    return bytes([REQUEST]) + sealed


class RequestInbox:
    """Opens REQUESTs sent to us, within a budget: a flood costs a few DHs a second, then nothing."""

    def __init__(self, clock, signing_key, on_request):
        """`on_request(requester key, name, note, source address)` for each valid one."""
        self._clock = clock
        self._own_key = bytes(signing_key.verify_key)
        self._box = SealedBox(signing_key.to_curve25519_private_key())
        self._on_request = on_request
        self._budget = TokenBucket(clock.seconds, OPENS_PER_SECOND, OPENS_BURST)
        self.dropped = 0  # over budget, malformed, stale or forged

    def received(self, data, address):
        if len(data) != SIZE or not self._budget.take():
            self.dropped += 1
            return
        try:
            requester, name, note = open_request(self._box, self._own_key, data, self._clock.seconds())
        except RequestError:
            self.dropped += 1
            return
        self._on_request(requester, name, note, address)


def open_request(box, own_key, data, now):
    """(requester key, name, note) from a REQUEST to `own_key`; RequestError otherwise."""
    try:
        body = box.decrypt(data[1:])
    except CryptoError:
        raise RequestError("does not open") from None
    if len(body) != PADDED_SIZE:  # sealed by someone, but not as a request is
        raise RequestError("bad size")
    requester, signature = body[:32], body[32:96]
    millis, name_length = struct.unpack_from(">QB", body, 96)
    name = body[105:105 + name_length]
    (note_length,) = struct.unpack_from(">H", body, 105 + name_length)
    note = body[107 + name_length:107 + name_length + note_length]
    if len(note) != note_length or note_length > MAX_NOTE_BYTES:
        raise RequestError("bad lengths")
    if abs(millis / 1000 - now) > WINDOW:
        raise RequestError("stale")
    try:
        VerifyKey(requester).verify(_signed_part(own_key, millis, name, note), signature)
        return requester, name.decode("utf-8"), note.decode("utf-8")
    except (BadSignatureError, ValueError, TypeError) as e:  # UnicodeDecodeError is a ValueError
        raise RequestError(f"not signed by its sender: {e}") from None
