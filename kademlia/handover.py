"""Hand-over (Kademlia paper 2.5): a node we newly meet that is among the k
closest to an item we hold gets a copy, via a `get` for its token and current
seq, then a `put` with the remaining TTL.

Bounded, so that a stranger cannot turn it into work or traffic:
- only to a contact that answered one of our queries at its address (a round
  trip we started: a spoofed source never does); a node met through its own
  query is pinged first, within `verify_per_second`;
- only items next to its id in the store's sorted index, at most
  `handover_per_contact` of them (no scan of the store per contact);
- at most `handover_per_second` items, all contacts together: the rest wait in
  a queue, served round-robin.
"""

from collections import OrderedDict, deque

from twisted.internet import defer

from kademlia.ratelimit import TokenBucket
from kademlia.timers import Loop

MAX_QUEUED_CONTACTS = 256


class Handover:
    def __init__(self, node, clock, settings):
        self._node = node
        self._enabled = settings.handover_per_second > 0
        self._per_contact = settings.handover_per_contact
        self._verify = TokenBucket(clock.seconds, settings.verify_per_second, settings.verify_burst)
        self._budget = TokenBucket(clock.seconds, settings.handover_per_second, settings.handover_burst)
        self._queue = OrderedDict()  # node id -> (contact, deque of targets)
        self._loop = Loop(clock, 1.0, self._pump)
        self.stats = {"verify_pings": 0, "handed_over": 0, "queue_full": 0}

    def met(self, contact):
        """A node that queried us is new to the table: if it should hold some of our
        items, ping it, so that its answer (a round trip) can make it `verified`."""
        if not self._enabled or not self._targets_for(contact) or not self._verify.allow():
            return
        self.stats["verify_pings"] += 1
        node = self._node
        node.query_contact(contact.node_id, contact.address, b"ping", {}).addErrback(lambda _: None)

    def verified(self, contact):
        """`contact` answered one of our queries: queue the items it should hold."""
        if not self._enabled or contact.node_id in self._queue:
            return
        targets = self._targets_for(contact)
        if not targets:
            return
        if len(self._queue) >= MAX_QUEUED_CONTACTS:
            self.stats["queue_full"] += 1
            return
        self._queue[contact.node_id] = (contact, deque(targets))
        self._loop.start(now=True)

    def _targets_for(self, contact):
        """Held targets near `contact`'s id that it is among the k closest to."""
        node = self._node
        near = node.store.targets_near(contact.node_id, self._per_contact)
        return [t for t in near if contact in node.routing_table.closest(t)][: self._per_contact]

    def _pump(self):
        while self._queue and self._budget.allow():
            node_id, (contact, targets) = self._queue.popitem(last=False)
            target = targets.popleft()
            if targets:
                self._queue[node_id] = (contact, targets)  # to the back: round-robin
            self.stats["handed_over"] += 1
            self._hand_over(contact, target).addErrback(lambda _: None)
        if not self._queue:
            self._loop.stop()

    @defer.inlineCallbacks
    def _hand_over(self, contact, target):
        node = self._node
        response = yield node.query_contact(contact.node_id, contact.address, b"get", {b"target": target})
        seq, token = response.values.get(b"seq"), response.values.get(b"token")
        held = node.store.get(target)
        if held is None or not isinstance(token, bytes):
            return
        if isinstance(seq, int) and seq >= held[0].seq:
            return
        yield node.send_put(contact, token, *held)

    def stop(self):
        self._queue.clear()
        return self._loop.stop()
