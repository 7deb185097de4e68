"""Joining the swarm, as a state machine: stopped -> joining -> joined -> stopping -> stopped.

While joining, an attempt (a DHT bootstrap) runs every `retry_interval`
seconds until some node answers; Refresh shares the attempt in flight instead
of starting another. The machine's whole behaviour is the table at the end.

An attempt that no node answered is said once (a warning naming every
HOST:PORT tried, and `unreachable` for the UIs' banner), not at every retry.
Nodes given on the command line (`unsaved`) are added to bootstrap.txt once
they have answered, so the next start needs no -I/-P.
"""

from enum import Enum

from twisted.internet import defer
from twisted.logger import Logger

from kademlia.timers import Loop, SingleFlight

BOOTSTRAP_FILE = "bootstrap.txt"
BOOTSTRAP_HEADER = b"# nodes to join the swarm through: HOST PORT per line\n"


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

    def __init__(self, clock, bootstrap, on_joined, on_nobody_answered, retry_interval=10.0,
                 resolve=None, bootstrap_file=None):
        """`bootstrap(addresses)` returns a Deferred of how many nodes it found through
        them (DHTNode.bootstrap); `on_joined(size)` and `on_nobody_answered()` are told
        how an attempt ended while joining. `resolve(host)` is a Deferred of the IPv4
        address of a host name (None: every host is an address already); answers come
        in through `heard_from`, a DHTNode response observer."""
        self.state = JoinState.STOPPED
        self.addresses = []  # the bootstrap nodes to join through, first tried first
        self.unsaved = []  # those of them to add to `bootstrap_file` once they answered
        self.unreachable = ()  # "HOST:PORT" of every node tried, while none of them answered
        self._bootstrap_file = bootstrap_file
        self._resolve = resolve
        self._asked = {}  # (address, port) asked in the last attempt -> (host, port) as given
        self._answered = set()  # the given (host, port) that answered
        self._said = None  # what the last failed attempt told the user
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

    def heard_from(self, address, responder_id=None, seen_address=None):
        """A DHT node at `address` answered a query of ours."""
        given = self._asked.get(tuple(address))
        if given is not None:
            self._answered.add(given)

    def _try_once(self):
        d = self._resolve_all()
        d.addCallback(self._bootstrap)
        d.addCallbacks(self._attempt_ended, self._attempt_failed)
        return d

    @defer.inlineCallbacks
    def _resolve_all(self):
        """The addresses to ask (host names resolved); a name that does not resolve is left out."""
        asked = {}
        for host, port in self.addresses:
            try:
                address = (yield self._resolve(host)) if self._resolve else host
            except Exception as e:  # DNS failures come as several error types
                self.log.info("cannot resolve {host}: {error}", host=host, error=e)
                continue
            asked[(address, port)] = (host, port)
        self._asked = asked
        return list(asked)

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
        self.unreachable = ()
        self._on_joined(self._size)

    def _remember_answered(self):
        for address in self.unsaved:
            if address in self._answered:
                self._append_to_bootstrap_file(*address)
        self.unsaved = []

    def _append_to_bootstrap_file(self, host, port):
        """Add a `HOST PORT` line, keeping the user's lines byte for byte."""
        path = self._bootstrap_file
        try:
            try:
                with open(path, "rb") as f:
                    old = f.read()
            except FileNotFoundError:
                old = b""
            before = b"" if old.endswith(b"\n") else b"\n" if old else BOOTSTRAP_HEADER
            with open(path, "ab") as f:
                f.write(before + f"{host} {port}\n".encode("utf-8"))
        except OSError as e:
            self.log.warn("cannot add {host} {port} to {path}: {error}", host=host, port=port, path=path,
                          error=e.strerror)
            return
        self.log.info("{host} {port} answered: added to {path}", host=host, port=port, path=path)

    def _tell_nobody_answered(self):
        self.unreachable = tuple(f"{host}:{port}" for host, port in self.addresses)
        if self._said != self.unreachable:  # once, not at every retry
            self._said = self.unreachable
            if self.addresses:
                self.log.warn("cannot reach the network: no answer from {tried}; trying again every {s:.0f} s",
                              tried=", ".join(self.unreachable), s=self._retry_interval)
            else:
                self.log.warn("no bootstrap node known: give -I HOST -P PORT or list HOST PORT lines in {file};"
                              " trying again every {s:.0f} s", file=BOOTSTRAP_FILE, s=self._retry_interval)
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
    (S.JOINING, E.ANSWERED): (S.JOINED, ("stop_retrying", "remember_answered", "tell_joined")),
    (S.JOINING, E.NOBODY_ANSWERED): (S.JOINING, ("tell_nobody_answered",)),
    (S.JOINING, E.STOP): (S.STOPPING, ("stop_retrying",)),
    (S.JOINED, E.STOP): (S.STOPPING, ()),
    (S.STOPPING, E.ANSWERED): (S.STOPPING, ()),
    (S.STOPPING, E.NOBODY_ANSWERED): (S.STOPPING, ()),
    (S.STOPPING, E.STOPPED): (S.STOPPED, ()),
}
del S, E
