"""Hostile variants of DHTNode for the scenario tests and benchmarks.

Each changes what it answers through the node's public seams only: its
`query_handlers` table (a handler returning None answers nothing) and
`handle_query`, which sees every query.
"""

import hashlib

from kademlia import krpc, nodeid
from kademlia.items import MutableItem
from kademlia.node import DHTNode
from kademlia.server import item_values


class DroppingNode(DHTNode):
    """Answers ping, so it stays in routing tables, but silently drops every
    other query: a black hole for lookups and stores."""

    DROPPED = (b"find_node", b"get_peers", b"get", b"put")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for method in self.DROPPED:
            self.query_handlers[method] = lambda args, address: None


class StaleNode(DHTNode):
    """Acknowledges every put but keeps only the first version it saw of each
    item, and serves that old version forever with the largest TTL allowed."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._archive = {}  # target -> the first version seen
        self._honest_get = self.query_handlers[b"get"]
        self.query_handlers[b"put"] = self._keep_first
        self.query_handlers[b"get"] = self._serve_first

    def _keep_first(self, args, address):
        try:
            item = MutableItem(k=args[b"k"], salt=args.get(b"salt", b""), seq=args[b"seq"],
                               v=args[b"v"], sig=args[b"sig"])
        except (KeyError, ValueError):
            return {}
        self._archive.setdefault(item.target, item)
        return {}

    def _serve_first(self, args, address):
        values = self._honest_get(args, address)
        old = self._archive.get(args[b"target"])
        if old is not None:
            values.update(item_values(old))
            values[b"ttl"] = 2**31
        return values


class ForgingNode(DHTNode):
    """Answers get with a forged item (the owner's key, a far higher seq, a
    garbage value, a random signature) and a `nodes` field of random bytes that
    decode to contacts nobody listens at; acknowledges puts and stores nothing."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._known_keys = {}
        self._honest_get = self.query_handlers[b"get"]
        self.query_handlers[b"put"] = lambda args, address: {}
        self.query_handlers[b"get"] = self._forge

    def _forge(self, args, address):
        target = args.get(b"target")
        values = self._honest_get(args, address)
        seed = hashlib.sha256(self.node_id + target).digest()
        values[b"nodes"] += _garbage_nodes(seed, 8)
        known = self._known_keys.get(target)
        values.update({
            b"k": known or seed,
            b"seq": 2**40,
            b"sig": hashlib.sha512(seed).digest(),
            b"v": {b"garbage": seed * 2},
            b"ttl": 2**31,
        })
        return values

    def handle_query(self, query, address):
        key = query.args.get(b"k")
        if query.method == b"put" and isinstance(key, bytes) and len(key) == 32:
            self._known_keys[hashlib.sha1(key + query.args.get(b"salt", b"")).digest()] = key
        return super().handle_query(query, address)


def _garbage_nodes(seed, count):
    """Compact node entries with random ids at 10.255.x.y, where nothing listens."""
    entries = []
    for i in range(count):
        block = hashlib.sha256(seed + bytes([i])).digest()
        entries.append(block[:20] + bytes([10, 255, block[20], block[21]]) + b"\x1a\xe1")
    return b"".join(entries)


class LyingNode(DHTNode):
    """A Sybil-style routing liar, one of a coalition: to any lookup it names the
    coalition's members under made-up ids a hair from the target, answers under
    the id it was named by, and never has the item. Node ids are not bound to
    anything in BEP 5, so nothing in the protocol tells these ids from real ones
    (BEP 42 binds ids to IPs; this swarm's 10/8 addresses are exempt from it)."""

    coalition = None  # addresses of the members; each coalition is a subclass

    @classmethod
    def new_coalition(cls, legal_ids=False):
        return type("LyingNode", (cls,), {"coalition": [], "legal_ids": legal_ids})

    def attach(self, network, address):
        self.coalition.append(address)
        return super().attach(network, address)

    legal_ids = False  # True: claim only ids BEP 42 allows the member's address

    def fake_id(self, address, target):
        if not self.legal_ids:
            return target[:15] + hashlib.sha256(repr(address).encode() + target).digest()[:5]
        # The nearest id to the target among the 8 slices BEP 42 leaves this address.
        head = int.from_bytes(target[:4], "big")
        prefix, r = min(self._slices(address), key=lambda slice_: slice_[0] ^ head)
        head = prefix | (head & 0x7FF)
        return head.to_bytes(4, "big") + target[4:19] + bytes([(target[19] & 0xF8) | r])

    def referred_members(self, target):
        """The 8 other members best placed to claim ids near `target`."""
        others = [a for a in self.coalition if a != self.address]
        if not self.legal_ids:
            return others[:8]
        head = int.from_bytes(target[:4], "big")
        return sorted(others, key=lambda a: min(p ^ head for p, _ in self._slices(a)))[:8]

    _slice_cache = {}

    @classmethod
    def _slices(cls, address):
        """(21-bit prefix as the top of a 32-bit int, r) for each r BEP 42 allows."""
        slices = cls._slice_cache.get(address)
        if slices is None:
            slices = [(int.from_bytes(nodeid.node_id_for(address[0], lambda n, r=r: bytes(19) + bytes([r]))[:4],
                                      "big") & 0xFFFFF800, r) for r in range(8)]
            cls._slice_cache[address] = slices
        return slices

    def handle_query(self, query, address):
        values = super().handle_query(query, address)
        target = query.args.get(b"target")
        if isinstance(target, bytes) and len(target) == 20:
            for key in (b"k", b"seq", b"sig", b"v", b"ttl"):
                values.pop(key, None)
            members = self.referred_members(target)
            values[b"nodes"] = b"".join(self.fake_id(a, target) + krpc.encode_address(a)
                                        for a in members)
            values[b"id"] = self.fake_id(self.address, target)
        return values


HOSTILE_KINDS = {"drop": DroppingNode, "stale": StaleNode, "forge": ForgingNode, "lie": LyingNode,
                 "lie42": LyingNode}


def hostile_mix(count, fraction, kinds=("drop", "stale", "forge")):
    """`(factory, how_many)` pairs making `fraction` of `count` nodes hostile, split
    evenly among `kinds`, and the number of honest nodes."""
    hostile = round(count * fraction)
    shares = [hostile // len(kinds) + (i < hostile % len(kinds)) for i in range(len(kinds))]
    factories = [LyingNode.new_coalition(legal_ids=k == "lie42") if HOSTILE_KINDS[k] is LyingNode
                 else HOSTILE_KINDS[k] for k in kinds]
    return [(f, n) for f, n in zip(factories, shares) if n], count - hostile
