"""Race alternatives: the first to succeed wins, the rest are cancelled, slow ones start late.

Each contender is `(delay, start)`: `start()` is called `delay` seconds after
the race begins, unless the race is already over, and returns a Deferred that
fires on success. This is how a contact is reached: direct paths and hole
punching at once, the relay only if nothing worked within a grace period
(as magic-wormhole's transit holds its relay back for a moment).
"""

from twisted.internet import defer

from kademlia.timers import cancel


class AllFailed(Exception):
    """Every contender of a race failed; `.failures` holds their Failures, in start order."""

    def __init__(self, failures):
        super().__init__(f"all {len(failures)} alternatives failed")
        self.failures = failures


def race(clock, contenders):
    """A Deferred for the winner's result; cancelling it cancels every contender."""
    return _Race(clock, contenders).result


class _Race:
    def __init__(self, clock, contenders):
        self._timers = []
        self._running = []
        self._failures = []
        self._entrants = len(contenders)
        self._over = False
        self.result = defer.Deferred(lambda _: self._end())
        for delay, start in contenders:
            if self._over:
                break  # an earlier contender already won
            if delay <= 0:
                self._start(start)
            else:
                self._timers.append(clock.callLater(delay, self._start, start))

    def _start(self, start):
        d = defer.maybeDeferred(start)
        self._running.append(d)
        d.addCallbacks(self._succeeded, self._failed)

    def _succeeded(self, value):
        if not self._over:
            self._end()
            self.result.callback(value)

    def _failed(self, failure):
        if self._over:
            return None  # cancelled: another contender won, or the race was called off
        self._failures.append(failure)
        if len(self._failures) == self._entrants:
            self._end()
            self.result.errback(AllFailed(self._failures))
        return None

    def _end(self):
        self._over = True
        self._timers = [cancel(t) for t in self._timers]
        for d in self._running:
            if not d.called:
                d.cancel()
