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

from twisted.internet import defer

from kademlia import krpc
from kademlia.protocol import NodeStopped
from kademlia.timers import cancel


class State(enum.Enum):
    """A candidate's state: WAITING -> IN_FLIGHT -> ANSWERED or FAILED; IN_FLIGHT ->
    STALLED when its adaptive timeout passes, and on to ANSWERED or FAILED still."""

    WAITING = "waiting"
    IN_FLIGHT = "in-flight"
    STALLED = "stalled"
    ANSWERED = "answered"
    FAILED = "failed"



class Candidate:
    __slots__ = ("node_id", "address", "distance", "state", "values", "stall_timer")

    def __init__(self, node_id, address, distance):
        self.node_id = node_id
        self.address = address
        self.distance = distance
        self.state = State.WAITING
        self.values = None
        self.stall_timer = None

    def __lt__(self, other):
        return self.distance < other.distance


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
        self._seen = set()  # (node id, address) pairs
        self._done = defer.Deferred(self._cancelled)
        self.queries_sent = 0

    def start(self, seeds):
        for contact in seeds:
            self._add(contact.node_id, contact.address)
        self._step()
        return self._done

    def _add(self, node_id, address):
        # Keyed by address too: a node that moved is referred at its new address while
        # our own table may still hold the old one, which will not answer.
        if (node_id, address) in self._seen or node_id == self._node.node_id:
            return
        if self._accept is not None and not self._accept(node_id, address):
            return
        self._seen.add((node_id, address))
        distance = int.from_bytes(node_id, "big") ^ self._target_key
        bisect.insort(self._shortlist, Candidate(node_id, address, distance))

    def _window(self):
        """The k closest candidates not known or suspected to be dead."""
        window = []
        for candidate in self._shortlist:
            if candidate.state not in (State.FAILED, State.STALLED):
                window.append(candidate)
                if len(window) == self.k:
                    break
        return window

    def _step(self):
        if self._done.called:
            return
        window = self._window()
        if all(c.state is State.ANSWERED for c in window):
            self._finish(window)
            return
        active = sum(1 for c in self._shortlist if c.state is State.IN_FLIGHT)
        for candidate in window:
            if active >= self.alpha:
                break
            if candidate.state is State.WAITING:
                self._ask(candidate)
                if self._done.called:  # our node stopped as we asked
                    return
                active += 1
        if active == 0 and not any(c.state is State.STALLED for c in self._shortlist):
            self._finish(window)  # nothing left to ask and nobody to wait for

    def _ask(self, candidate):
        candidate.state = State.IN_FLIGHT
        self.queries_sent += 1
        stall_after = self._node.stall_timeout(candidate.node_id)
        candidate.stall_timer = self._node.clock.callLater(stall_after, self._stalled, candidate)
        d = self._node.query_contact(candidate.node_id, candidate.address, self._method, self._args)
        d.addCallbacks(self._answered, self._failed, (candidate,), None, (candidate,))

    def _stalled(self, candidate):
        candidate.stall_timer = None
        if candidate.state is State.IN_FLIGHT:
            candidate.state = State.STALLED
            self._step()

    def _cancel_stall_timer(self, candidate):
        candidate.stall_timer = cancel(candidate.stall_timer)

    def _answered(self, response, candidate):
        self._cancel_stall_timer(candidate)
        if self._accept is not None and not self._accept(response.sender_id, candidate.address):
            candidate.state = State.FAILED  # answers under an id its address may not have
            self._step()
            return
        if response.sender_id != candidate.node_id:
            # Someone else answers at that address now: trust the answer, not the old id.
            candidate.node_id = response.sender_id
        candidate.state = State.ANSWERED
        candidate.values = response.values
        try:
            nodes = krpc.decode_nodes(response.values.get(b"nodes", b""))
        except krpc.MalformedMessage:
            nodes = []
        for node_id, address in nodes:
            self._add(node_id, address)
        self._step()

    def _failed(self, failure, candidate):
        self._cancel_stall_timer(candidate)
        candidate.state = State.FAILED
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
        self._done.callback([c for c in window if c.state is State.ANSWERED])
