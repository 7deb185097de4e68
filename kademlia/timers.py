"""Timers on an injected clock, and one attempt shared by many callers.

Every periodic job in kademlia and kadchat is a `Loop`; every one-shot timer
that may be superseded is cancelled with `cancel`. Both take the clock
(`IReactorTime`) as a parameter, so tests drive them with `task.Clock`.
"""

from twisted.internet import defer, task
from twisted.logger import Logger
from twisted.python.failure import Failure


class Loop:
    """Call `function` every `interval` seconds on `clock` between `start()` and `stop()`."""

    log = Logger()

    def __init__(self, clock, interval, function):
        self._clock = clock
        self._interval = interval
        self._function = function
        self._call = None

    @property
    def running(self):
        return self._call is not None and self._call.running

    def start(self, now=False):
        """Start (again); with `now`, the first call happens at once. A running loop is left alone."""
        if self.running:
            return
        self._call = task.LoopingCall(self._function)
        self._call.clock = self._clock
        self._call.start(self._interval, now=now).addErrback(self._died)

    def stop(self):
        """Stop calling; fires at once (nothing is left scheduled)."""
        if self.running:
            self._call.stop()
        return defer.succeed(None)

    def _died(self, failure):
        # LoopingCall stops at the first exception; say so instead of losing it.
        self.log.failure("periodic {name} stopped", failure, name=getattr(self._function, "__name__", "job"))


def cancel(delayed_call):
    """Cancel `delayed_call` if it is still pending; returns None, to clear the holder:
    `self._timer = cancel(self._timer)`."""
    if delayed_call is not None and delayed_call.active():
        delayed_call.cancel()
    return None


class SingleFlight:
    """One run of `attempt()` (which returns a Deferred) at a time, however many ask.

    Calling while a run is in flight joins it: every caller's Deferred fires with
    that run's result. A call after the run ended starts a new one.
    """

    def __init__(self, attempt):
        self._attempt = attempt
        self._waiters = None

    @property
    def in_flight(self):
        return self._waiters is not None

    def __call__(self):
        waiter = defer.Deferred()
        if self._waiters is not None:
            self._waiters.append(waiter)
            return waiter
        self._waiters = [waiter]
        defer.maybeDeferred(self._attempt).addBoth(self._ended)
        return waiter

    def _ended(self, result):
        waiters, self._waiters = self._waiters, None
        fire = "errback" if isinstance(result, Failure) else "callback"
        for waiter in waiters:
            getattr(waiter, fire)(result)
