"""Joining the swarm, as a state machine: stopped -> joining -> joined -> stopping -> stopped.

While joining, an attempt (a DHT bootstrap) runs every `retry_interval`
seconds until some node answers; Refresh shares the attempt in flight instead
of starting another. The machine's whole behaviour is the table at the end.
"""

from enum import Enum

from twisted.internet import defer
from twisted.logger import Logger

from kademlia.timers import Loop, SingleFlight

BOOTSTRAP_FILE = "bootstrap.txt"


class JoinState(Enum):
    STOPPED = "stopped"
    JOINING = "joining"
    JOINED = "joined"
    STOPPING = "stopping"


class JoinEvent(Enum):
    START = "start"
    ANSWERED = "answered"  # an attempt found nodes
    NOBODY_ANSWERED = "nobody answered"
    STOP = "stop"
    STOPPED = "stopped"  # everything the service runs is closed


class Joiner:
    log = Logger()

    def __init__(self, clock, bootstrap, on_joined, on_nobody_answered, retry_interval=10.0):
        """`bootstrap(addresses)` returns a Deferred of how many nodes it found through
        them (DHTNode.bootstrap); `on_joined(size)` and `on_nobody_answered()` are told
        how an attempt ended while joining."""
        self.state = JoinState.STOPPED
        self.addresses = []  # the bootstrap nodes to join through, first tried first
        self._retry_interval = retry_interval
        self._bootstrap = bootstrap
        self._on_joined = on_joined
        self._on_nobody_answered = on_nobody_answered
        self._attempt = SingleFlight(self._try_once)
        self._retry = Loop(clock, retry_interval, self.join)
        self._size = 0

    @property
    def joined(self):
        return self.state is JoinState.JOINED

    def start(self):
        self._event(JoinEvent.START)

    def join(self):
        """While joining: try now (or wait for the attempt in flight); fires when it ended."""
        if self.state is not JoinState.JOINING:
            return defer.succeed(None)
        return self._attempt()

    def stop(self):
        """The service is closing down: no more attempts, no more news."""
        self._event(JoinEvent.STOP)

    def stopped(self):
        self._event(JoinEvent.STOPPED)

    def _try_once(self):
        d = self._bootstrap(self.addresses)
        d.addCallbacks(self._attempt_ended, self._attempt_failed)
        return d

    def _attempt_ended(self, size):
        self._size = size
        self._event(JoinEvent.ANSWERED if size else JoinEvent.NOBODY_ANSWERED)

    def _attempt_failed(self, failure):
        self.log.failure("joining the swarm failed", failure)
        self._event(JoinEvent.NOBODY_ANSWERED)

    # -- actions ------------------------------------------------------------------

    def _retry_every_interval(self):
        self._retry.start(now=True)

    def _stop_retrying(self):
        self._retry.stop()

    def _tell_joined(self):
        self._on_joined(self._size)

    def _tell_nobody_answered(self):
        if self.addresses:
            self.log.warn("no bootstrap node answered; retrying in {s:.0f} s", s=self._retry_interval)
        else:
            self.log.warn("no bootstrap node known: give -I HOST -P PORT or list HOST PORT lines in {file};"
                          " retrying in {s:.0f} s", file=BOOTSTRAP_FILE, s=self._retry_interval)
        self._on_nobody_answered()

    def _event(self, event):
        self.state, actions = TRANSITIONS[self.state, event]
        for action in actions:
            getattr(self, "_" + action)()


S, E = JoinState, JoinEvent
# (state, event) -> (next state, actions). Attempts that end after STOP change nothing.
TRANSITIONS = {
    (S.STOPPED, E.START): (S.JOINING, ("retry_every_interval",)),
    (S.STOPPED, E.STOP): (S.STOPPED, ()),
    (S.JOINING, E.ANSWERED): (S.JOINED, ("stop_retrying", "tell_joined")),
    (S.JOINING, E.NOBODY_ANSWERED): (S.JOINING, ("tell_nobody_answered",)),
    (S.JOINING, E.STOP): (S.STOPPING, ("stop_retrying",)),
    (S.JOINED, E.STOP): (S.STOPPING, ()),
    (S.STOPPING, E.ANSWERED): (S.STOPPING, ()),
    (S.STOPPING, E.NOBODY_ANSWERED): (S.STOPPING, ()),
    (S.STOPPING, E.STOPPED): (S.STOPPED, ()),
}
del S, E
