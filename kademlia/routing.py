"""The routing table: k-buckets over the 160-bit id space (Kademlia paper 2.2, BEP 5).

Buckets cover contiguous id ranges; only the bucket holding our own id splits
(BEP 5), so the table keeps fine detail near us and a few contacts far away.
Contacts are good (heard from recently), questionable (quiet for 15 minutes)
or bad (failed several queries in a row). A full bucket replaces a bad contact
at once; otherwise a newcomer waits in the bucket's replacement cache and takes
the place of the next contact that goes bad.
"""

import os
from collections import OrderedDict, deque

from kademlia import krpc
from kademlia.rtt import RTTEstimator

ID_BITS = 160
QUESTIONABLE_AFTER = 15 * 60
BAD_AFTER_FAILURES = 2


def id_to_int(node_id):
    return int.from_bytes(node_id, "big")


def distance(a, b):
    return id_to_int(a) ^ id_to_int(b)


class Contact:
    __slots__ = ("node_id", "key", "_address", "_compact", "last_seen", "failures", "rtt", "verified")

    def __init__(self, node_id, address, last_seen):
        self.node_id = node_id
        self.key = id_to_int(node_id)
        self.address = address
        self.last_seen = last_seen
        self.failures = 0
        self.rtt = RTTEstimator()
        self.verified = False  # answered one of our queries at this address

    @property
    def address(self):
        return self._address

    @address.setter
    def address(self, address):
        self._address = address
        self._compact = None

    @property
    def compact(self):
        """Our id and address as find_node answers carry them: encoded once, not per answer."""
        if self._compact is None:
            self._compact = krpc.encode_node(self.node_id, self._address)
        return self._compact

    def is_bad(self):
        return self.failures >= BAD_AFTER_FAILURES

    def __repr__(self):
        return f"<Contact {self.node_id.hex()[:8]} {self.address[0]}:{self.address[1]}>"


class Bucket:
    def __init__(self, low, high, k, changed_at):
        self.low, self.high = low, high  # covers ids in [low, high)
        self.span_bits = (high - low).bit_length() - 1  # the range is 2**span_bits ids
        self.k = k
        self.contacts = OrderedDict()  # node_id -> Contact, least recently seen first
        self.replacements = deque(maxlen=k)
        self.changed_at = changed_at

    def covers(self, key):
        return self.low <= key < self.high

    def is_full(self):
        return len(self.contacts) >= self.k

    def min_distance(self, key):
        return ((self.low ^ key) >> self.span_bits) << self.span_bits

    def max_distance(self, key):
        return self.min_distance(key) + (self.high - self.low) - 1

    def random_id(self, rand_bytes=os.urandom):
        span = self.high - self.low
        offset = int.from_bytes(rand_bytes(ID_BITS // 8), "big") % span
        return (self.low + offset).to_bytes(ID_BITS // 8, "big")


class RoutingTable:
    def __init__(self, own_id, now, k=8):
        self.own_id = own_id
        self.own_key = id_to_int(own_id)
        self.k = k
        self._now = now
        self.buckets = [Bucket(0, 2**ID_BITS, k, now())]
        self._by_address = {}  # address -> Contact, so a restarted node replaces itself
        self._by_id = {}  # node_id -> Contact: every query and answer looks its sender up

    def __len__(self):
        return len(self._by_id)

    def rekey(self, own_id):
        """Take a new own id: the contacts we know are sorted into buckets around it again."""
        known = self.contacts()
        self.own_id, self.own_key = own_id, id_to_int(own_id)
        self.buckets = [Bucket(0, 2**ID_BITS, self.k, self._now())]
        self._by_address = {}
        self._by_id = {}
        for contact in known:
            if contact.node_id != own_id:
                self._insert(contact, contact.key)

    def _bucket_index(self, key):
        low, high = 0, len(self.buckets) - 1
        while low < high:  # buckets are sorted by range
            mid = (low + high) // 2
            if key >= self.buckets[mid].high:
                low = mid + 1
            else:
                high = mid
        return low

    def get(self, node_id):
        return self._by_id.get(node_id)

    def contacts(self):
        return [c for b in self.buckets for c in b.contacts.values()]

    def heard_from(self, node_id, address):
        """A node answered us or queried us: it is alive. Returns its Contact (or None)."""
        if node_id == self.own_id:
            return None
        now = self._now()
        stale = self._by_address.get(address)
        if stale is not None and stale.node_id != node_id:
            self.remove(stale.node_id)  # a new node (or a restart) took this address
        key = id_to_int(node_id)
        contact = self._by_id.get(node_id)
        if contact is not None:
            bucket = self.buckets[self._bucket_index(key)]
            if contact.address != address:  # the node moved: keep its place, new address
                self._by_address.pop(contact.address, None)
                contact.address = address
                contact.verified = False
                self._by_address[address] = contact
            contact.last_seen, contact.failures = now, 0
            bucket.contacts.move_to_end(node_id)
            bucket.changed_at = now
            return contact
        contact = Contact(node_id, address, now)
        return self._insert(contact, key)

    def _insert(self, contact, key):
        # Most nodes we hear from are not in our table and find their bucket full:
        # this runs for nearly every query and answer, so it is written out flat.
        while True:
            index = self._bucket_index(key)
            bucket = self.buckets[index]
            if not bucket.is_full():
                self._place(bucket, contact)
                return contact
            if bucket.covers(self.own_key) and bucket.high - bucket.low > self.k:
                self._split(index)
                continue
            for bad in bucket.contacts.values():
                if bad.failures >= BAD_AFTER_FAILURES:  # Contact.is_bad
                    self.remove(bad.node_id)
                    self._place(bucket, contact)
                    return contact
            for waiting in bucket.replacements:
                if waiting.node_id == contact.node_id:
                    return None
            bucket.replacements.append(contact)
            return None

    def _place(self, bucket, contact):
        bucket.contacts[contact.node_id] = contact
        bucket.changed_at = self._now()
        self._by_address[contact.address] = contact
        self._by_id[contact.node_id] = contact

    def _split(self, index):
        bucket = self.buckets[index]
        middle = (bucket.low + bucket.high) // 2
        lower = Bucket(bucket.low, middle, self.k, bucket.changed_at)
        upper = Bucket(middle, bucket.high, self.k, bucket.changed_at)
        for node_id, contact in bucket.contacts.items():
            (lower if contact.key < middle else upper).contacts[node_id] = contact
        for contact in bucket.replacements:
            (lower if contact.key < middle else upper).replacements.append(contact)
        self.buckets[index : index + 1] = [lower, upper]

    def failed(self, node_id):
        """A query to this node timed out; a bad node yields to a replacement."""
        bucket = self.buckets[self._bucket_index(id_to_int(node_id))]
        contact = bucket.contacts.get(node_id)
        if contact is None:
            return
        contact.failures += 1
        if contact.is_bad() and bucket.replacements:
            self.remove(node_id)
            self._place(bucket, bucket.replacements.pop())

    def remove(self, node_id):
        bucket = self.buckets[self._bucket_index(id_to_int(node_id))]
        contact = bucket.contacts.pop(node_id, None)
        if contact is None:
            return
        del self._by_id[node_id]
        if self._by_address.get(contact.address) is contact:
            del self._by_address[contact.address]

    def closest(self, target, count=None, exclude_bad=True):
        """The `count` (default k) known contacts closest to `target` by XOR distance."""
        count = count or self.k
        key = id_to_int(target)
        # A bucket's range is an aligned power of two, and XOR with the target maps it
        # onto another aligned range: buckets ordered by their nearest possible id
        # (prefix XOR the target's) hold ever farther contacts, with no overlap. So
        # the nearest buckets' contacts, each bucket sorted, are the nearest contacts.
        limit = BAD_AFTER_FAILURES if exclude_bad else float("inf")  # Contact.is_bad
        # This runs for every query we answer. The target's own bucket comes first
        # (distance bound 0), and often holds enough contacts by itself.
        first = self._bucket_index(key)
        found = self._nearest_in(self.buckets[first], key, limit)
        if len(found) >= count:
            return found[:count]
        # (distance bound, index) pairs sort in C.
        order = sorted([((b.low ^ key) >> b.span_bits << b.span_bits, i) for i, b in enumerate(self.buckets)])
        for _, index in order[1:]:
            found += self._nearest_in(self.buckets[index], key, limit)
            if len(found) >= count:
                break
        return found[:count]

    @staticmethod
    def _nearest_in(bucket, key, limit):
        """The bucket's contacts with fewer than `limit` failures, nearest `key` first."""
        return [c for _, c in sorted([(c.key ^ key, c) for c in bucket.contacts.values() if c.failures < limit])]

    def questionable(self):
        """Contacts to ping (BEP 5): first those that failed their last queries and
        are still here (no replacement took their place), so that when a partition
        heals they are back within a maintenance round rather than after 15 quiet
        minutes; then those not heard from for a while."""
        cutoff = self._now() - QUESTIONABLE_AFTER
        contacts = self.contacts()
        failing = [c for c in contacts if c.is_bad()]
        return failing + [c for c in contacts if not c.is_bad() and c.last_seen < cutoff]

    def stale_buckets(self, age=QUESTIONABLE_AFTER):
        cutoff = self._now() - age
        return [b for b in self.buckets if b.changed_at < cutoff]
