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
    __slots__ = ("node_id", "address", "distance", "state", "values", "stall_timer")

    def __init__(self, node_id, address, distance):
        self.node_id = node_id
        self.address = address
        self.distance = distance
        self.state = WAITING
        self.values = None
        self.stall_timer = None



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
        stall_after = self._node.stall_timeout(candidate.node_id)
        candidate.stall_timer = self._node.clock.callLater(stall_after, self._stalled, candidate)
        d = self._node.query_contact(candidate.node_id, candidate.address, self._method, self._args)
        d.addCallbacks(self._answered, self._failed, (candidate,), None, (candidate,))

    def _stalled(self, candidate):
        candidate.stall_timer = None
        if candidate.state is IN_FLIGHT:
            self._move(candidate, STALLED)
            self._step()

    def _cancel_stall_timer(self, candidate):
        candidate.stall_timer = cancel(candidate.stall_timer)

    def _answered(self, response, candidate):
        self._cancel_stall_timer(candidate)
        if self._accept is not None and not self._accept(response.sender_id, candidate.address):
            self._move(candidate, FAILED)  # answers under an id its address may not have
            self._step()
            return
        if response.sender_id != candidate.node_id:
            # Someone else answers at that address now: trust the answer, not the old id.
            candidate.node_id = response.sender_id
        self._move(candidate, ANSWERED)
        candidate.values = response.values
        try:
            entries = krpc.split_nodes(response.values.get(b"nodes", b""))
        except krpc.MalformedMessage:
            entries = []
        for entry in entries:
            self._refer(entry)
        self._step()

    def _failed(self, failure, candidate):
        self._cancel_stall_timer(candidate)
        self._move(candidate, FAILED)
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
        for candidate in self._shortlist:
            self._cancel_stall_timer(candidate)

    def _finish(self, window):
        for candidate in self._shortlist:
            self._cancel_stall_timer(candidate)
        self._done.callback([c for c in window if c.state is ANSWERED])
