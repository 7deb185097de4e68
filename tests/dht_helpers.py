"""Shared helpers for the DHT tests: signed items, node ids, loopback addresses."""

import hashlib
import random

from nacl.signing import SigningKey

from kademlia.items import MutableItem


class Signer:
    """An ed25519 key that makes BEP 44 items; deterministic from `seed`."""

    def __init__(self, seed=0):
        self._key = SigningKey(hashlib.sha256(b"signer %d" % seed).digest())
        self.public_key = bytes(self._key.verify_key)

    def sign(self, message):
        return self._key.sign(message).signature

    def item(self, v, seq=1, salt=b""):
        return MutableItem.create(self.public_key, self.sign, v, seq, salt)


def forged(item, **changes):
    """A copy of `item` with fields changed but the old signature kept."""
    fields = {"k": item.k, "salt": item.salt, "seq": item.seq, "v": item.v, "sig": item.sig}
    fields.update(changes)
    return MutableItem(**fields)


def random_ids(count, seed):
    rng = random.Random(seed)
    return [rng.randbytes(20) for _ in range(count)]


def loopback_address(index):
    """A distinct 127.0.x.y per index (x, y in 1..250), so per-IP limits act as between hosts."""
    return f"127.0.{1 + index // 250}.{1 + index % 250}"
