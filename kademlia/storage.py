"""The item store: BEP 44 replacement rules, travelling TTLs, quotas.

Each stored item has its own deadline. An item arrives with a TTL (capped by
this node); when it is handed on, the remaining time goes with it, never more,
so a replica can never outlive the original (the prototype's TTL patch).

Cheap checks come before the signature check, and an item identical to the one
held is never verified twice: a flood of stale or repeated puts costs little.
"""

import bisect

from kademlia.items import (
    ERROR_CAS_MISMATCH,
    ERROR_INVALID_SIGNATURE,
    ERROR_SEQ_LESS_THAN_CURRENT,
    ItemError,
)
from kademlia.krpc import SERVER_ERROR, KRPCError


class StoredItem:
    __slots__ = ("item", "deadline", "source_ip", "refreshed")

    def __init__(self, item, deadline, source_ip, refreshed):
        self.item = item
        self.deadline = deadline
        self.source_ip = source_ip
        self.refreshed = refreshed  # when the replicas were last brought up to date


class ItemStore:
    def __init__(self, now, default_ttl=600, max_ttl=600, max_items=100_000, max_per_ip=100):
        self._now = now
        self.default_ttl = default_ttl
        self.max_ttl = max_ttl
        self.max_items = max_items
        self.max_per_ip = max_per_ip
        self._items = {}  # target -> StoredItem
        self._keys = []  # the targets as integers, sorted: items near an id without a scan
        self._per_ip = {}  # source ip -> number of items it placed here
        self.refused = 0

    def __len__(self):
        return len(self._items)

    def get(self, target):
        """(item, remaining ttl) or None."""
        stored = self._items.get(target)
        if stored is None:
            return None
        remaining = stored.deadline - self._now()
        if remaining <= 0:
            self._drop(target)
            return None
        return stored.item, remaining

    def targets_near(self, node_id, count):
        """Up to `count` held targets on each side of `node_id` in id order, nearest
        (XOR) first: those sharing the longest prefixes with it."""
        key = int.from_bytes(node_id, "big")
        at = bisect.bisect_left(self._keys, key)
        near = sorted(self._keys[max(0, at - count) : at + count], key=lambda k: k ^ key)
        return [k.to_bytes(len(node_id), "big") for k in near]

    def items(self):
        """(item, remaining ttl) for every live item."""
        now = self._now()
        return [(s.item, s.deadline - now) for s in self._items.values() if s.deadline > now]

    def unrefreshed(self, min_remaining, age):
        """(item, remaining ttl) for the live items with more than `min_remaining`
        left whose replicas were last refreshed `age(target)` seconds ago or more."""
        now = self._now()
        return [(s.item, s.deadline - now) for t, s in self._items.items()
                if s.deadline - now > min_remaining and now - s.refreshed >= age(t)]

    def refreshed(self, target):
        """A put or a fellow replica's get brought `target`'s replicas up to date just now."""
        stored = self._items.get(target)
        if stored is not None:
            stored.refreshed = self._now()

    def put(self, item, ttl, source_ip, cas=None):
        """Store `item` or raise KRPCError with the BEP 44 code saying why not."""
        try:
            self._check_and_store(item, ttl, source_ip, cas)
        except ItemError as e:
            self.refused += 1
            raise KRPCError(e.code, e.message) from None
        except KRPCError:
            self.refused += 1
            raise

    def _check_and_store(self, item, ttl, source_ip, cas):
        item.check_sizes()
        lifetime = self.default_ttl if ttl is None else min(max(int(ttl), 1), self.max_ttl)
        deadline = self._now() + lifetime
        held = self.get(item.target)
        if held is not None:
            current = held[0]
            if cas is not None and cas != current.seq:
                raise KRPCError(ERROR_CAS_MISMATCH, "CAS mismatch")
            if item.seq < current.seq:
                raise KRPCError(ERROR_SEQ_LESS_THAN_CURRENT, "sequence number less than current")
            if item.seq == current.seq:
                if item != current:
                    raise KRPCError(ERROR_SEQ_LESS_THAN_CURRENT, "sequence number equal to current, value differs")
                stored = self._items[item.target]
                stored.deadline, stored.refreshed = max(stored.deadline, deadline), self._now()
                return
        if not item.verify():
            raise KRPCError(ERROR_INVALID_SIGNATURE, "invalid signature")
        if held is None:
            self._check_quota(source_ip)
            self._per_ip[source_ip] = self._per_ip.get(source_ip, 0) + 1
            self._items[item.target] = StoredItem(item, deadline, source_ip, self._now())
            bisect.insort(self._keys, int.from_bytes(item.target, "big"))
        else:
            stored = self._items[item.target]
            stored.item, stored.deadline, stored.refreshed = item, deadline, self._now()

    def _check_quota(self, source_ip):
        if len(self._items) >= self.max_items:
            self.expire()
            if len(self._items) >= self.max_items:
                raise KRPCError(SERVER_ERROR, "storage full")
        if self._per_ip.get(source_ip, 0) >= self.max_per_ip:
            raise KRPCError(SERVER_ERROR, "too many items from this address")

    def expire(self):
        now = self._now()
        for target in [t for t, s in self._items.items() if s.deadline <= now]:
            self._drop(target)

    def _drop(self, target):
        stored = self._items.pop(target)
        del self._keys[bisect.bisect_left(self._keys, int.from_bytes(target, "big"))]
        left = self._per_ip[stored.source_ip] - 1
        if left:
            self._per_ip[stored.source_ip] = left
        else:
            del self._per_ip[stored.source_ip]
