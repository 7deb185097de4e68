"""Iterative lookups (Kademlia paper 2.3; BEP 5 `find_node`/`get`).

A lookup keeps a shortlist ordered by XOR distance to the target and keeps up to
`alpha` queries in flight to the closest candidates not yet asked. It ends when
the k closest candidates that are still believed alive have all answered.

A query that exceeds its contact's adaptive timeout is *stalled*: it no longer
holds one of the alpha slots nor a place among the k closest, so a dead node
never makes the lookup wait while live candidates remain. Its answer, if it
still comes before the hard timeout, is used all the same.
"""

import bisect
import enum
from operator import attrgetter

from twisted.internet import defer

from kademlia import krpc
from kademlia.protocol import NodeStopped
from kademlia.timers import cancel


class State(enum.IntEnum):
    """A candidate's state: WAITING -> IN_FLIGHT -> ANSWERED or FAILED; IN_FLIGHT ->
    STALLED when its adaptive timeout passes, and on to ANSWERED or FAILED still.
    (Integers: they index the lookup's count of candidates in each state.)"""

    WAITING = 0
    IN_FLIGHT = 1
    STALLED = 2
    ANSWERED = 3
    FAILED = 4


# Plain names: an enum member looked up on its class costs a descriptor call, and
# these are read for every candidate at every step.
WAITING, IN_FLIGHT, STALLED, ANSWERED, FAILED = State


class Candidate:
    __slots__ = ("node_id", "address", "distance", "state", "values", "stall_at")

    def __init__(self, node_id, address, distance):
        self.node_id = node_id
        self.address = address
        self.distance = distance
        self.state = WAITING
        self.values = None
        self.stall_at = None  # when its query, in flight, stalls



_distance = attrgetter("distance")


class Lookup:
    """Run with `start()`; the Deferred fires with the answered Candidates among
    the k closest, nearest first (each with the response `values`)."""

    def __init__(self, node, target, method, args, k, alpha, accept=None):
        self._node = node
        self._accept = accept  # accept(node_id, address): ids allowed in the shortlist
        self._target_key = int.from_bytes(target, "big")
        self._method = method
        self._args = args
        self.k = k
        self.alpha = alpha
        self._shortlist = []  # sorted by distance
        # Compact node entries (id + address) already met: a referral seen before is
        # skipped before it is decoded, as most referrals in a lookup are.
        self._seen = set()
        self._in_state = [0] * len(State)  # how many candidates are in each state
        # One timer for the lookup, at the earliest stall deadline of the queries in
        # flight (not one per query: a lookup sends a dozen, most answered in time).
        self._in_flight = set()
        self._stall_timer = None
        self._done = defer.Deferred(self._cancelled)
        self.queries_sent = 0

    def start(self, seeds):
        """`seeds`: routing Contacts (node_id, address and their `compact` encoding)."""
        for contact in seeds:
            if contact.compact not in self._seen:
                self._seen.add(contact.compact)
                self._add(contact.node_id, contact.address)
        self._step()
        return self._done

    def _refer(self, entry):
        # Keyed by address too: a node that moved is referred at its new address while
        # our own table may still hold the old one, which will not answer.
        if entry in self._seen:
            return
        self._seen.add(entry)
        node = krpc.decode_node(entry)
        if node is not None:
            self._add(*node)

    def _add(self, node_id, address):
        if node_id == self._node.node_id:
            return
        if self._accept is not None and not self._accept(node_id, address):
            return
        distance = int.from_bytes(node_id, "big") ^ self._target_key
        bisect.insort(self._shortlist, Candidate(node_id, address, distance), key=_distance)
        self._in_state[WAITING] += 1

    def _move(self, candidate, state):
        self._in_state[candidate.state] -= 1
        self._in_state[state] += 1
        candidate.state = state

    def _window(self):
        """The k closest candidates not known or suspected to be dead."""
        window = []
        for candidate in self._shortlist:
            if candidate.state is not FAILED and candidate.state is not STALLED:
                window.append(candidate)
                if len(window) == self.k:
                    break
        return window

    def _step(self):
        if self._done.called:
            return
        window = self._window()
        if self._in_state[ANSWERED] >= len(window) and all(c.state is ANSWERED for c in window):
            self._finish(window)
            return
        for candidate in window:
            if self._in_state[IN_FLIGHT] >= self.alpha:
                break
            if candidate.state is WAITING:
                self._ask(candidate)
                if self._done.called:  # our node stopped as we asked
                    return
        if not self._in_state[IN_FLIGHT] and not self._in_state[STALLED]:
            self._finish(window)  # nothing left to ask and nobody to wait for

    def _ask(self, candidate):
        self._move(candidate, IN_FLIGHT)
        self.queries_sent += 1
        candidate.stall_at = self._node.clock.seconds() + self._node.stall_timeout(candidate.node_id)
        self._in_flight.add(candidate)
        if self._stall_timer is None or candidate.stall_at < self._stall_timer.getTime():
            self._arm_stall_timer(candidate.stall_at)
        d = self._node.query_contact(candidate.node_id, candidate.address, self._method, self._args)
        d.addCallbacks(self._answered, self._failed, (candidate,), None, (candidate,))

    def _arm_stall_timer(self, when):
        cancel(self._stall_timer)
        clock = self._node.clock
        self._stall_timer = clock.callLater(max(0, when - clock.seconds()), self._stalls_due)

    def _stalls_due(self):
        self._stall_timer = None
        now = self._node.clock.seconds() + 1e-9  # the timer's own deadline counts as due
        stalled = [c for c in self._in_flight if c.stall_at <= now]
        for candidate in stalled:
            self._settled(candidate, STALLED)
        if self._in_flight:
            self._arm_stall_timer(min(c.stall_at for c in self._in_flight))
        if stalled:
            self._step()

    def _settled(self, candidate, state):
        """A query in flight has an outcome (or stalled): it no longer needs the timer."""
        self._in_flight.discard(candidate)
        self._move(candidate, state)

    def _answered(self, response, candidate):
        if self._accept is not None and not self._accept(response.sender_id, candidate.address):
            self._settled(candidate, FAILED)  # answers under an id its address may not have
            self._step()
            return
        if response.sender_id != candidate.node_id:
            # Someone else answers at that address now: trust the answer, not the old id.
            candidate.node_id = response.sender_id
        self._settled(candidate, ANSWERED)
        candidate.values = response.values
        try:
            entries = krpc.split_nodes(response.values.get(b"nodes", b""))
        except krpc.MalformedMessage:
            entries = []
        for entry in entries:
            self._refer(entry)
        self._step()

    def _failed(self, failure, candidate):
        self._settled(candidate, FAILED)
        if failure.check(NodeStopped):
            # Our own node stopped: end now with what has answered, asking nobody else.
            if not self._done.called:
                self._finish(self._window())
            return None
        self._step()
        return None

    def _cancelled(self, _):
        """The caller gave up (e.g. a timeout): ask nobody else. Queries in flight end
        by themselves, answered or timed out, and still teach the routing table."""
        self._stall_timer = cancel(self._stall_timer)

    def _finish(self, window):
        self._stall_timer = cancel(self._stall_timer)
        self._done.callback([c for c in window if c.state is ANSWERED])
