"""Sealed transport datagrams for one session (after the handshake).

Each datagram is TRANSPORT | receiver index | counter | ChaCha20-Poly1305
(IETF) ciphertext, with the nonce built from the counter and the header as
associated data, so index and counter cannot be altered either. Counters go
up by one per datagram and never repeat under one key; the receiver keeps a
sliding window of the counters it has accepted (RFC 6479 style, as IPsec and
WireGuard do) so reordered datagrams pass and replayed ones do not. Keys are
retired by age and use, the limits WireGuard picked: ask for a new handshake
after 2 minutes, refuse the keys after 3.
"""

from dataclasses import dataclass

from nacl import bindings
from nacl.exceptions import CryptoError

from kadchat import wire

REPLAY_WINDOW = 2048


@dataclass(frozen=True)
class Limits:
    rekey_after_messages: int = 2**20
    reject_after_messages: int = 2**60
    rekey_after_time: float = 120.0
    reject_after_time: float = 180.0


DEFAULT_LIMITS = Limits()


@dataclass
class ChannelStats:
    """Counters shared by all of an endpoint's channels."""

    sealed: int = 0
    opened: int = 0
    tampered: int = 0  # failed authentication under a known session
    replayed: int = 0  # counter already seen or older than the window
    undecryptable: int = 0  # unknown session index, retired keys, malformed datagram


class ChannelError(Exception):
    pass


class Tampered(ChannelError):
    pass


class Replayed(ChannelError):
    pass


class Expired(ChannelError):
    pass


class ReplayWindow:
    """Which of the last `size` counters were accepted: bit i of `_seen` is counter top - i."""

    def __init__(self, size=REPLAY_WINDOW):
        self._size = size
        self._mask = (1 << size) - 1
        self._top = -1
        self._seen = 0

    @property
    def bitmap_bits(self):
        """Bits the bitmap takes now: never more than the window size."""
        return self._seen.bit_length()

    def fresh(self, counter):
        if counter > self._top:
            return True
        offset = self._top - counter
        return offset < self._size and not (self._seen >> offset) & 1

    def mark(self, counter):
        """Record an authenticated counter (only after the AEAD check passed)."""
        jump = counter - self._top
        if jump >= self._size:  # nothing seen before stays inside the window: start afresh
            self._seen = 1  # (shifting by the jump would cost time and memory in proportion to it)
            self._top = counter
        elif jump > 0:
            self._seen = ((self._seen << jump) | 1) & self._mask
            self._top = counter
        else:
            self._seen |= 1 << (self._top - counter)


class Channel:
    """Seals and opens datagrams with one session's keys."""

    def __init__(self, keys, created, stats, limits=DEFAULT_LIMITS):
        self.keys = keys
        self.created = created
        self.stats = stats
        self.limits = limits
        self._send_counter = 0
        self._window = ReplayWindow()

    def needs_rekey(self, now):
        return (self._send_counter >= self.limits.rekey_after_messages
                or now - self.created >= self.limits.rekey_after_time)

    def expired(self, now):
        return (self._send_counter >= self.limits.reject_after_messages
                or now - self.created >= self.limits.reject_after_time)

    def seal(self, payload, now):
        if self.expired(now):
            raise Expired("session keys retired")
        counter = self._send_counter
        self._send_counter += 1
        header = wire.transport_header(self.keys.remote_index, counter)
        sealed = bindings.crypto_aead_chacha20poly1305_ietf_encrypt(
            payload, header, _nonce(header), self.keys.send_key)
        self.stats.sealed += 1
        return header + sealed

    def open(self, transport, now):
        """Plaintext of a TRANSPORT addressed to this session; raises ChannelError."""
        if self.expired(now):
            self.stats.undecryptable += 1
            raise Expired("session keys retired")
        if not self._window.fresh(transport.counter):
            self.stats.replayed += 1
            raise Replayed(f"counter {transport.counter} already seen or too old")
        try:
            payload = bindings.crypto_aead_chacha20poly1305_ietf_decrypt(
                transport.sealed, transport.header, _nonce(transport.header), self.keys.receive_key)
        except CryptoError:
            self.stats.tampered += 1
            raise Tampered("datagram does not authenticate") from None
        self._window.mark(transport.counter)
        self.stats.opened += 1
        return payload


def _nonce(header):
    # 4 zero bytes + the 8-byte big-endian counter that ends the header
    return b"\0\0\0\0" + header[-wire.COUNTER_SIZE:]
