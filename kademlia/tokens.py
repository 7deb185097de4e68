"""Write tokens (BEP 5): proof that a `put` comes from the IP that did the `get`.

A token is a keyed hash of the requester's IP under a secret that rotates every
`rotate_after` seconds; tokens made under the previous secret stay valid, so a
token lives between one and two rotation periods.
"""

import hashlib
import hmac
import os

TOKEN_LENGTH = 8


class TokenManager:
    def __init__(self, now, rotate_after=300, random_bytes=os.urandom):
        self._now = now
        self._random = random_bytes
        self.rotate_after = rotate_after
        self._current = random_bytes(16)
        self._previous = self._current
        self._rotated_at = now()

    def _rotate_if_due(self):
        if self._now() - self._rotated_at >= self.rotate_after:
            self._previous, self._current = self._current, self._random(16)
            self._rotated_at = self._now()

    @staticmethod
    def _token(secret, ip):
        return hashlib.blake2b(ip.encode(), key=secret, digest_size=TOKEN_LENGTH).digest()

    def issue(self, ip):
        self._rotate_if_due()
        return self._token(self._current, ip)

    def is_valid(self, ip, token):
        self._rotate_if_due()
        if not isinstance(token, bytes):
            return False
        return hmac.compare_digest(token, self._token(self._current, ip)) or hmac.compare_digest(
            token, self._token(self._previous, ip)
        )
