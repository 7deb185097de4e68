"""Handshakes under load: a CPU budget for initiations, cookies for the rest.

Answering an INITIATION costs an X25519 and an AEAD open (~90 us) before we
know who sent it, and its source address may be spoofed, so per-address
limits alone cannot bound that work. The idea is WireGuard's cookie reply
(WireGuard paper, section 5.4.7); the code is ours:

- Every INITIATION carries mac1, a keyed hash under a key derived from the
  callee's identity key: initiations not meant for us (noise, a wrong key) are
  dropped after one hash.
- Up to `rate` initiations a second (a token bucket on the clock) are
  answered as usual. Past it we are *under load*: an initiation gets a
  COOKIE_REPLY instead, carrying cookie = MAC(secret, source address) (the
  secret rotates every `cookie_lifetime` seconds), sealed so that only the
  sender of that initiation (who knows our key and its mac1) can read it.
- The caller sends its initiation again with mac2 = MAC(cookie, initiation):
  proof that it receives at that address. Such initiations are answered up to
  `proven_rate` a second overall and `per_address_rate` per address.
- An address that a session authenticated a datagram from lately (`vouch`)
  counts as proven too: a contact's rekey needs no cookie round trip, and
  does not compete with a flood for cookie replies.

So at most `rate + proven_rate` handshakes a second cost a DH, whatever the
flood, and a spoofed source never gets past the cookie. Cookie replies are
capped too (`cookie_rate`): each is a send, and a flood must not make us
spend more per datagram than its sender does.
"""

import hashlib
import hmac
import os
from collections import OrderedDict
from dataclasses import dataclass

from nacl import bindings
from nacl.exceptions import CryptoError

from kadchat import wire
from kademlia.ratelimit import PerIPRateLimiter

_MAC1_LABEL = b"kadchat mac1 v1"
_COOKIE_LABEL = b"kadchat cookie v1"


@dataclass(frozen=True)
class HandshakeBudget:
    rate: float = 100.0  # initiations per second answered without a cookie
    burst: int = 20  # of those, at once
    proven_rate: float = 400.0  # initiations per second with a valid cookie, when under load
    per_address_rate: float = 2.0  # of those, per source address
    per_address_burst: int = 5
    cookie_rate: float = 2000.0  # cookie replies per second (each costs ~15 us and a send)
    cookie_lifetime: float = 120.0  # the secret rotates this often; a cookie lives as long
    vouched: int = 4096  # addresses remembered as proven by a session (the latest)


class CookieError(Exception):
    """A cookie reply that does not open: not for us, or forged."""


class TokenBucket:
    """`take()` spends one token, refilled at `rate` per second up to `burst`."""

    def __init__(self, now, rate, burst):
        self._now = now
        self._rate = rate
        self._burst = burst
        self._tokens = float(burst)
        self._refilled = now()

    def ready(self, now=None):
        """A token is there (refilled up to now); nothing is spent."""
        now = self._now() if now is None else now
        self._tokens = min(self._burst, self._tokens + (now - self._refilled) * self._rate)
        self._refilled = now
        return self._tokens >= 1

    def take(self):
        if not self.ready():
            return False
        self._tokens -= 1
        return True


# -- the caller's side ---------------------------------------------------------


def with_mac1(initiation, callee_key):
    """The initiation datagram with its mac1 for the callee (identity key `callee_key`)."""
    body = initiation[:wire.INITIATION_MAC1_AT]
    return body + _mac(_mac1_key(callee_key), body) + wire.NO_MAC


def with_mac2(initiation, cookie):
    """The initiation datagram (mac1 set) proving, with `cookie`, its source address."""
    body = initiation[:wire.INITIATION_MAC2_AT]
    return body + _mac(cookie, body)


def open_cookie_reply(reply, callee_key, initiation):
    """The cookie inside `reply` (a wire.CookieReply) answering our `initiation` datagram."""
    mac1 = initiation[wire.INITIATION_MAC1_AT:wire.INITIATION_MAC2_AT]
    try:
        return bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
            reply.sealed_cookie, mac1, reply.nonce, _cookie_seal_key(callee_key))
    except CryptoError:
        raise CookieError("cookie reply does not open") from None


# -- the callee's side ----------------------------------------------------------

ANSWER = "answer"  # do the handshake
COOKIE = "cookie"  # send the cookie reply instead
OVER_BUDGET = "over budget"  # neither: no budget left, even for cookie replies
INVALID = "invalid"  # neither: mac1 is wrong, the initiation is not meant for us


class InitiationGate:
    """Decides, cheaply and before any DH, what an initiation gets."""

    def __init__(self, now, public_key, budget=HandshakeBudget()):
        self._now = now
        self._budget = budget
        self._mac1_key = _mac1_key(public_key)
        self._seal_key = _cookie_seal_key(public_key)
        self._open = TokenBucket(now, budget.rate, budget.burst)
        # (these two allow bursts of a tenth of a second's worth)
        self._proven = TokenBucket(now, budget.proven_rate, max(1, budget.proven_rate // 10))
        self._per_address = PerIPRateLimiter(now, budget.per_address_rate, budget.per_address_burst)
        self._cookie_replies = TokenBucket(now, budget.cookie_rate, max(1, budget.cookie_rate // 10))
        self._secrets = (os.urandom(32), os.urandom(32))  # (current, previous)
        self._rotated = now()
        self._vouched = OrderedDict()  # addr -> when a session last authenticated a datagram from it
        self.under_load = False  # the last initiation found the open budget spent

    def vouch(self, addr):
        """A datagram from `addr` authenticated under one of our sessions: it receives there."""
        self._vouched[addr] = self._now()
        self._vouched.move_to_end(addr)
        if len(self._vouched) > self._budget.vouched:
            self._vouched.popitem(last=False)

    def admit(self, datagram, addr):
        """ANSWER, COOKIE, OVER_BUDGET or INVALID for `datagram`, an INITIATION
        of the right size, from `addr`.

        Cheapest first: under a flood most initiations end at the first test."""
        now = self._now()
        self.under_load = not self._open.ready(now)
        proving = datagram[wire.INITIATION_MAC2_AT:] != wire.NO_MAC
        vouched = self.under_load and self._vouched_lately(addr, now)
        if self.under_load and not (proving or vouched) and not self._cookie_replies.ready(now):
            return OVER_BUDGET
        if not hmac.compare_digest(_mac(self._mac1_key, datagram[:wire.INITIATION_MAC1_AT]),
                                   datagram[wire.INITIATION_MAC1_AT:wire.INITIATION_MAC2_AT]):
            return INVALID
        if not self.under_load:
            self._open.take()
            return ANSWER
        if vouched or (proving and self._proves_address(datagram, addr)):
            return ANSWER if self._per_address.allow(addr) and self._proven.take() else OVER_BUDGET
        return COOKIE if self._cookie_replies.take() else OVER_BUDGET

    def cookie_reply(self, initiation, datagram, addr):
        """The COOKIE_REPLY datagram for `initiation` (decoded `datagram`) from `addr`."""
        nonce = os.urandom(wire.COOKIE_NONCE_SIZE)
        mac1 = datagram[wire.INITIATION_MAC1_AT:wire.INITIATION_MAC2_AT]
        sealed = bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
            self._cookie(self._current_secrets()[0], addr), mac1, nonce, self._seal_key)
        return wire.encode_cookie_reply(initiation.sender_index, nonce, sealed)

    def _vouched_lately(self, addr, now):
        seen = self._vouched.get(addr)
        return seen is not None and now - seen < self._budget.cookie_lifetime

    def _proves_address(self, datagram, addr):
        mac2 = datagram[wire.INITIATION_MAC2_AT:]
        body = datagram[:wire.INITIATION_MAC2_AT]
        return any(hmac.compare_digest(_mac(self._cookie(secret, addr), body), mac2)
                   for secret in self._current_secrets())

    def _current_secrets(self):
        now = self._now()
        if now - self._rotated >= self._budget.cookie_lifetime:
            # A cookie handed out just before a rotation stays good until the next one.
            self._secrets = (os.urandom(32), self._secrets[0])
            self._rotated = now
        return self._secrets

    @staticmethod
    def _cookie(secret, addr):
        # Addresses are opaque (tuples, or traversal routes, frozen dataclasses):
        # their repr is stable for as long as a secret lives.
        return _mac(secret, repr(addr).encode())


def _mac(key, data):
    return hashlib.blake2b(data, key=key, digest_size=wire.MAC_SIZE).digest()


def _mac1_key(public_key):
    return hashlib.blake2b(_MAC1_LABEL + public_key, digest_size=32).digest()


def _cookie_seal_key(public_key):
    return hashlib.blake2b(_COOKIE_LABEL + public_key, digest_size=32).digest()
