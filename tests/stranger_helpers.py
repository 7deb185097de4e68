"""What a stranger sends: the requests of the amplification and freeze attacks
(tests/test_dht_strangers.py, tests/test_dht_spoofing.py, bench/strangers.py).

Requests are as short as an attacker would make them (a 1-byte transaction id,
no padding), so the ratios measured are the worst case.
"""

import hashlib
import random

from kademlia import bencode
from tests.dht_helpers import Signer

# Targets of the stored items and ids of the spoofed nodes share these 12 bits.
PREFIX = 0xABC
PREFIX_BITS = 12


def with_prefix(rng, prefix=PREFIX, bits=PREFIX_BITS):
    """A random 20-byte id whose first `bits` bits are `prefix`."""
    rest = rng.getrandbits(160 - bits)
    return ((prefix << (160 - bits)) | rest).to_bytes(20, "big")


def items_near(count, seed=0, prefix=PREFIX, bits=PREFIX_BITS, value=b"x"):
    """`count` signed items whose targets start with `prefix` (salts searched for)."""
    signer = Signer(seed)
    items = []
    salt = 0
    while len(items) < count:
        salt += 1
        encoded = b"%d" % salt
        target = hashlib.sha1(signer.public_key + encoded).digest()
        if int.from_bytes(target[:4], "big") >> (32 - bits) == prefix:
            items.append(signer.item(value, salt=encoded))
    return items


def query(method, args, transaction=b"x"):
    return bencode.encode({b"t": transaction, b"y": b"q", b"q": method, b"a": args})


def requests(target, rng=None):
    """The reflection probes, one per request type: {name: datagram}."""
    rng = rng or random.Random(5)
    sender = rng.randbytes(20)
    return {
        "ping": query(b"ping", {b"id": sender}),
        "find_node": query(b"find_node", {b"id": sender, b"target": target}),
        "get_peers": query(b"get_peers", {b"id": sender, b"info_hash": target}),
        "get (empty)": query(b"get", {b"id": sender, b"target": rng.randbytes(20)}),
        "get (value)": query(b"get", {b"id": sender, b"target": target}),
    }


def fresh_id_pings(count, seed=7):
    """`count` pings, each under a fresh node id carrying PREFIX."""
    rng = random.Random(seed)
    return [query(b"ping", {b"id": with_prefix(rng)}) for _ in range(count)]
