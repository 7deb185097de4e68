"""An in-memory datagram network on a twisted Clock, for the chat layer's tests.

Datagrams wait in a heap (not one Clock call each: Clock re-sorts its whole
list on every callLater), so runs of tens of thousands of datagrams stay fast.
Loss and latency jitter (which reorders) come from one seeded Random.
"""

import heapq
import random


class LossyNetwork:
    def __init__(self, clock, seed=0, loss=0.0, latency=(0.01, 0.01)):
        self.clock = clock
        self.loss = loss
        self.latency = latency
        self.random = random.Random(seed)
        self.endpoints = {}  # addr -> datagram_received(data, src)
        self.taps = []  # fn(data, src, dst): sees every datagram sent, like an eavesdropper
        self.filters = []  # fn(data, src, dst) -> True drops the datagram
        self._queue = []
        self._order = 0

    def attach(self, addr, datagram_received):
        """Connect a handler at `addr`; returns its `send(data, dst)`."""
        self.endpoints[addr] = datagram_received
        return lambda data, dst: self.inject(data, addr, dst)

    def detach(self, addr):
        self.endpoints.pop(addr, None)

    def inject(self, data, src, dst):
        for tap in self.taps:
            tap(data, src, dst)
        if self.loss and self.random.random() < self.loss:
            return
        if any(f(data, src, dst) for f in self.filters):
            return
        delay = self.random.uniform(*self.latency)
        self._order += 1
        heapq.heappush(self._queue, (self.clock.seconds() + delay, self._order, src, dst, data))

    def run(self, until=lambda: False, timeout=60.0):
        """Deliver datagrams and fire timers in time order until `until()` holds,
        nothing is left to happen, or `timeout` virtual seconds pass."""
        deadline = self.clock.seconds() + timeout
        while not until():
            next_times = [t for t in (self._queue[0][0] if self._queue else None,
                                      self._next_timer()) if t is not None]
            if not next_times or min(next_times) > deadline:
                self.clock.advance(max(0.0, deadline - self.clock.seconds()))
                return until()
            self.clock.advance(max(0.0, min(next_times) - self.clock.seconds()))
            while self._queue and self._queue[0][0] <= self.clock.seconds():
                _, _, src, dst, data = heapq.heappop(self._queue)
                handler = self.endpoints.get(dst)
                if handler is not None:
                    handler(data, src)
        return True

    def _next_timer(self):
        calls = self.clock.getDelayedCalls()
        return min((c.getTime() for c in calls), default=None)
