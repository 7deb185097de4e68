"""Session handshake: a Noise-IK-like exchange between two identity keys.

Pattern (Noise spec, section 7.5 "IK"), with the Noise names for the steps:

    <- s                      the caller already knows the callee's identity key
    -> e, es, s, ss           INITIATION: caller's identity sealed, never in clear
    <- e, ee, se              RESPONSE: proves the callee holds its identity key

Identity keys are ed25519; the DH steps use their X25519 forms. Both sides
contribute fresh ephemeral keys, so later theft of identity keys does not open
recorded sessions. The caller's sealed timestamp lets the callee refuse stale
or replayed initiations; the callee refuses non-contacts after one DH and one
AEAD open, and does not answer them. The callee learns that the caller
completed the handshake from the first datagram sealed with the new keys
(`confirm`).

Hash: BLAKE2b-256; key derivation: HKDF with keyed BLAKE2b in place of HMAC
(BLAKE2 is a MAC when keyed); AEAD: ChaCha20-Poly1305 IETF, nonce 0, since
each handshake key seals exactly one thing.
"""

import enum
import hashlib
import os
import struct
from dataclasses import dataclass

from nacl import bindings
from nacl.exceptions import CryptoError

from kadchat import wire
from kadchat.replaystore import LatestInitiations

PROTOCOL_NAME = b"kadchat IK 25519 ChaChaPoly BLAKE2b v1"
INITIATION_WINDOW = 120.0  # seconds an initiation stays acceptable (either side of now)
_ZERO_NONCE = bytes(12)
_TIMESTAMP = struct.Struct(">Q")


class HandshakeError(Exception):
    """The peer's handshake message does not authenticate or is not acceptable."""


class NotAContact(HandshakeError):
    """A valid initiation from an identity that is not in our contacts."""


class StaleInitiation(HandshakeError):
    """An initiation outside the time window, or one already answered."""


class State(enum.Enum):
    IDLE = "idle"
    INITIATED = "initiated"  # caller: initiation sent, waiting for the response
    RESPONDED = "responded"  # callee: keys derived, waiting for the caller's first datagram
    ESTABLISHED = "established"
    FAILED = "failed"


class Event(enum.Enum):
    INITIATE = "initiate"
    RESPOND = "respond"
    RECEIVE_RESPONSE = "receive response"
    CONFIRM = "confirm"
    FAIL = "fail"


TRANSITIONS = {
    (State.IDLE, Event.INITIATE): State.INITIATED,
    (State.IDLE, Event.RESPOND): State.RESPONDED,
    (State.INITIATED, Event.RECEIVE_RESPONSE): State.ESTABLISHED,
    (State.RESPONDED, Event.CONFIRM): State.ESTABLISHED,
    (State.IDLE, Event.FAIL): State.FAILED,
    (State.INITIATED, Event.FAIL): State.FAILED,
    (State.RESPONDED, Event.FAIL): State.FAILED,
}


class StaticIdentity:
    """Our long-term ed25519 identity and its X25519 form, converted once."""

    def __init__(self, signing_key):
        self.public_key = bytes(signing_key.verify_key)
        self._dh_private = bindings.crypto_sign_ed25519_sk_to_curve25519(
            bytes(signing_key) + self.public_key)

    def dh(self, public):
        return _dh(self._dh_private, public)


@dataclass(frozen=True)
class SessionKeys:
    """What a completed handshake yields: per-direction keys and the index pair."""

    send_key: bytes
    receive_key: bytes
    local_index: int  # peers put this in datagrams meant for us
    remote_index: int  # we put this in datagrams meant for the peer
    peer_key: bytes  # the peer's ed25519 identity
    initiator: bool


class InitiationGuard:
    """Refuses initiations outside the time window or already answered, and a
    peer's initiation no newer than the last one answered (`latest`, a
    kadchat.replaystore.LatestInitiations: on disk, that survives restarts).

    An exact duplicate (the same initiation sent to several of our addresses)
    gets the same answer again: that creates no session and reveals nothing.
    (Duplicates may differ in mac2, which is outside the handshake: kadchat.cookies.)
    """

    def __init__(self, window=INITIATION_WINDOW, capacity=4096, latest=None):
        self._window = window
        self._capacity = capacity
        self._latest = latest or LatestInitiations(keep_seconds=2 * window)
        self._answered = {}  # ephemeral -> (forget at, initiation digest, response), oldest first

    def repeated_answer(self, datagram, initiation, now):
        """The response already sent for this exact initiation, else None.

        Raises StaleInitiation for a different initiation reusing an ephemeral.
        """
        seen = self._answered.get(initiation.ephemeral)
        if seen is None or seen[0] <= now:
            return None
        if seen[1] != _digest(datagram[:wire.INITIATION_MAC1_AT]):
            raise StaleInitiation("ephemeral key reused")
        return seen[2]

    def check_fresh(self, timestamp, now):
        if abs(now - timestamp) > self._window:
            raise StaleInitiation("initiation timestamp outside the window")
        # (a replay inside the window is caught by repeated_answer, or check_newer)

    def check_newer(self, peer_key, timestamp_us):
        if not self._latest.is_newer(peer_key, timestamp_us):
            raise StaleInitiation("initiation no newer than one already answered")

    def remember(self, datagram, initiation, response, now, peer_key=None, timestamp_us=None):
        # Entries all live the same time, so the oldest are first in the dict.
        while self._answered:
            ephemeral, (forget_at, _, _) = next(iter(self._answered.items()))
            if forget_at > now and len(self._answered) < self._capacity:
                break
            del self._answered[ephemeral]
        # Kept until the timestamp check alone would refuse the initiation.
        self._answered[initiation.ephemeral] = (
            now + 2 * self._window, _digest(datagram[:wire.INITIATION_MAC1_AT]), response)
        if peer_key is not None:
            self._latest.record(peer_key, timestamp_us, now)


class Handshake:
    """One handshake attempt, in either role; `state` follows TRANSITIONS."""

    def __init__(self, peer_key, local_index, initiator):
        self.state = State.IDLE
        self.peer_key = peer_key
        self.local_index = local_index
        self.initiator = initiator
        self.keys = None
        self._transcript = None
        self._ephemeral_private = None
        self._identity = None

    def _fire(self, event):
        try:
            self.state = TRANSITIONS[(self.state, event)]
        except KeyError:
            raise HandshakeError(f"{event.value} not allowed in state {self.state.value}") from None

    # -- caller ---------------------------------------------------------------

    @classmethod
    def initiate(cls, identity, peer_key, local_index, now):
        """Start a handshake towards `peer_key`; returns (handshake, initiation datagram)."""
        hs = cls(peer_key, local_index, initiator=True)
        try:
            peer_dh = _to_dh_public(peer_key)
        except HandshakeError:
            hs._fire(Event.FAIL)
            raise
        hs._fire(Event.INITIATE)
        hs._identity = identity
        t = hs._transcript = _Transcript(peer_key)
        t.mix_hash(wire.initiation_header(local_index))
        hs._ephemeral_private = os.urandom(32)
        ephemeral = bindings.crypto_scalarmult_base(hs._ephemeral_private)
        t.mix_hash(ephemeral)
        t.mix_key(_dh(hs._ephemeral_private, peer_dh))  # es
        sealed_static = t.seal(identity.public_key)
        t.mix_key(identity.dh(peer_dh))  # ss
        sealed_timestamp = t.seal(_TIMESTAMP.pack(int(now * 1_000_000)))
        return hs, wire.encode_initiation(local_index, ephemeral, sealed_static, sealed_timestamp)

    def receive_response(self, response):
        """Check the callee's RESPONSE; returns the SessionKeys or raises HandshakeError."""
        if self.state is not State.INITIATED or response.receiver_index != self.local_index:
            raise HandshakeError("unexpected response")
        # On a copy: a forged response raises and leaves the attempt INITIATED.
        t = self._transcript.copy()
        t.mix_hash(wire.response_header(response.sender_index, response.receiver_index))
        t.mix_hash(response.ephemeral)
        t.mix_key(_dh(self._ephemeral_private, response.ephemeral))  # ee
        t.mix_key(self._identity.dh(response.ephemeral))  # se
        t.open(response.sealed_empty)
        self._fire(Event.RECEIVE_RESPONSE)
        send_key, receive_key = t.split()
        self.keys = SessionKeys(send_key, receive_key, self.local_index, response.sender_index,
                                self.peer_key, initiator=True)
        self._forget_secrets()
        return self.keys

    # -- callee ---------------------------------------------------------------

    @classmethod
    def respond(cls, identity, initiation, local_index, now, is_contact, guard, datagram):
        """Answer a caller's INITIATION; returns (handshake, response datagram).

        Raises NotAContact, StaleInitiation or HandshakeError; then nothing is sent.
        """
        t = _Transcript(identity.public_key)
        t.mix_hash(wire.initiation_header(initiation.sender_index))
        t.mix_hash(initiation.ephemeral)
        t.mix_key(identity.dh(initiation.ephemeral))  # es
        peer_key = t.open(initiation.sealed_static)
        if not is_contact(peer_key):
            raise NotAContact("initiation from a stranger")
        t.mix_key(identity.dh(_to_dh_public(peer_key)))  # ss
        (timestamp_us,) = _TIMESTAMP.unpack(t.open(initiation.sealed_timestamp))
        guard.check_fresh(timestamp_us / 1_000_000, now)
        guard.check_newer(peer_key, timestamp_us)

        hs = cls(peer_key, local_index, initiator=False)
        hs._fire(Event.RESPOND)
        t.mix_hash(wire.response_header(local_index, initiation.sender_index))
        ephemeral_private = os.urandom(32)
        ephemeral = bindings.crypto_scalarmult_base(ephemeral_private)
        t.mix_hash(ephemeral)
        t.mix_key(_dh(ephemeral_private, initiation.ephemeral))  # ee
        t.mix_key(_dh(ephemeral_private, _to_dh_public(peer_key)))  # se
        sealed_empty = t.seal(b"")
        receive_key, send_key = t.split()
        hs.keys = SessionKeys(send_key, receive_key, local_index, initiation.sender_index,
                              peer_key, initiator=False)
        response = wire.encode_response(local_index, initiation.sender_index, ephemeral, sealed_empty)
        guard.remember(datagram, initiation, response, now, peer_key, timestamp_us)
        return hs, response

    def confirm(self):
        """The caller's first sealed datagram arrived: it holds the keys too."""
        if self.state is State.RESPONDED:
            self._fire(Event.CONFIRM)

    def fail(self):
        """Give up on an unfinished attempt (a finished one stays as it is)."""
        if (self.state, Event.FAIL) in TRANSITIONS:
            self._fire(Event.FAIL)
        self._forget_secrets()

    def _forget_secrets(self):
        self._transcript = self._ephemeral_private = self._identity = None


class _Transcript:
    """Noise's SymmetricState: chaining key `ck`, handshake hash `h`, current key `k`."""

    def __init__(self, responder_key):
        self.h = _hash(PROTOCOL_NAME)
        self.ck = self.h
        self.k = None
        self.mix_hash(responder_key)  # the pre-message "<- s"

    def copy(self):
        twin = _Transcript.__new__(_Transcript)
        twin.h, twin.ck, twin.k = self.h, self.ck, self.k
        return twin

    def mix_hash(self, data):
        self.h = _hash(self.h + data)

    def mix_key(self, shared):
        self.ck, self.k = _kdf2(self.ck, shared)

    def seal(self, plaintext):
        sealed = bindings.crypto_aead_chacha20poly1305_ietf_encrypt(plaintext, self.h, _ZERO_NONCE, self.k)
        self.mix_hash(sealed)
        return sealed

    def open(self, sealed):
        try:
            plaintext = bindings.crypto_aead_chacha20poly1305_ietf_decrypt(sealed, self.h, _ZERO_NONCE, self.k)
        except CryptoError:
            raise HandshakeError("handshake message does not authenticate") from None
        self.mix_hash(sealed)
        return plaintext

    def split(self):
        """(initiator-to-responder key, responder-to-initiator key)."""
        return _kdf2(self.ck, b"")


def _hash(data):
    return hashlib.blake2b(data, digest_size=32).digest()


def _digest(data):
    return hashlib.blake2b(data, digest_size=16).digest()


def _kdf2(chaining_key, input_key_material):
    """HKDF (RFC 5869) extract-and-expand to two 32-byte outputs, keyed BLAKE2b as the PRF."""
    prk = hashlib.blake2b(input_key_material, key=chaining_key, digest_size=32).digest()
    first = hashlib.blake2b(b"\x01", key=prk, digest_size=32).digest()
    second = hashlib.blake2b(first + b"\x02", key=prk, digest_size=32).digest()
    return first, second


def _dh(private, public):
    try:
        return bindings.crypto_scalarmult(private, public)
    except Exception:  # libsodium refuses low-order points (all-zero result)
        raise HandshakeError("unusable public key") from None


def _to_dh_public(ed25519_public):
    try:
        return bindings.crypto_sign_ed25519_pk_to_curve25519(ed25519_public)
    except Exception:
        raise HandshakeError("not a valid identity key") from None
