"""PresenceTracker: follows our contacts' presence records (kadchat.presence) in the DHT."""

from twisted.internet import defer, task
from twisted.logger import Logger

from kadchat.blinding import epoch_of
from kadchat.presence import AWAY, OFFLINE, ONLINE, SALT, open_record, record_target


UNKNOWN_STATUS = "unknown"  # before the first look-up

# (status before, status after) -> event for listeners. A contact that stays
# online or away but changes addresses gives ADDRESS_CHANGED instead.
TRANSITIONS = {
    (UNKNOWN_STATUS, ONLINE): ONLINE,
    (UNKNOWN_STATUS, AWAY): AWAY,
    (UNKNOWN_STATUS, OFFLINE): OFFLINE,
    (OFFLINE, ONLINE): ONLINE,
    (OFFLINE, AWAY): AWAY,
    (ONLINE, AWAY): AWAY,
    (ONLINE, OFFLINE): OFFLINE,
    (AWAY, ONLINE): ONLINE,
    (AWAY, OFFLINE): OFFLINE,
}
ADDRESS_CHANGED = "address"


class _Watched:
    def __init__(self, public_key):
        self.public_key = public_key
        self.status = UNKNOWN_STATUS
        self.presence = None  # newest believable record seen, offline ones included


class PresenceTracker:
    """Looks up contacts' records and tells listeners `listener(name, event, presence)`.

    Each look-up covers the epochs of now - skew, now and now + skew, so a
    contact whose clock differs from ours by up to `skew` seconds is found. The
    record with the newest inner timestamp wins; one older than `ttl` counts as
    offline, whoever keeps re-putting it.
    """

    log = Logger()

    def __init__(self, clock, dht, contacts=(), epoch_seconds=300, ttl=600,
                 skew=120.0, interval=10.0, lookup_timeout=30.0):
        self._clock = clock
        self._dht = dht
        self._epoch_seconds = epoch_seconds
        self._ttl = ttl
        self._skew = skew
        self._interval = interval
        self._lookup_timeout = lookup_timeout
        self._watched = {name: _Watched(key) for name, key in contacts}
        self._listeners = []
        self._waiters = []
        self._pending = set()
        self._loop = None
        self._stopped = False

    def add_contact(self, name, public_key):
        self._watched[name] = _Watched(public_key)

    def remove_contact(self, name):
        self._watched.pop(name, None)

    def subscribe(self, listener):
        self._listeners.append(listener)

    def status(self, name) -> str:
        """online, away, offline or unknown (not looked up yet)."""
        return self._watched[name].status

    def presence(self, name):
        """The contact's current Presence while online or away, else None."""
        watched = self._watched[name]
        return watched.presence if watched.status in (ONLINE, AWAY) else None

    def start(self):
        """Refresh every `interval` seconds, starting now."""
        self._stopped = False
        self._loop = task.LoopingCall(self.refresh)
        self._loop.clock = self._clock
        self._loop.start(self._interval, now=True)

    def stop(self):
        self._stopped = True
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        for d in list(self._pending):
            d.cancel()
        return defer.succeed(None)

    def refresh(self):
        """Look everyone up; fires (never fails) when done. Joins a refresh already running."""
        waiter = defer.Deferred()
        self._waiters.append(waiter)
        if len(self._waiters) == 1:
            self._refresh_all().addBoth(self._refreshed)
        return waiter

    def _refreshed(self, _):
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.callback(None)

    def _refresh_all(self):
        now = self._clock.seconds()
        epochs = sorted({epoch_of(t, self._epoch_seconds) for t in (now - self._skew, now, now + self._skew)})
        lookups = []
        for name, watched in list(self._watched.items()):
            d = defer.gatherResults([self._lookup(watched.public_key, e) for e in epochs])
            d.addCallback(self._update, name, watched)
            lookups.append(d)
        return defer.DeferredList(lookups, consumeErrors=True)

    def _lookup(self, public_key, epoch):
        """The contact's Presence for `epoch`, or None (nothing there, or nothing valid)."""
        try:
            target = record_target(public_key, epoch)
        except ValueError:
            return defer.succeed(None)
        d = self._dht.get(target, salt=SALT)
        d.addTimeout(self._lookup_timeout, self._clock)
        self._pending.add(d)

        def opened(item):
            self._pending.discard(d)
            return None if item is None else open_record(public_key, epoch, item)

        def failed(failure):
            self._pending.discard(d)
            if not failure.check(defer.CancelledError):
                self.log.info("presence look-up for epoch {epoch} failed: {error}", epoch=epoch, error=failure.value)
            return None

        return d.addCallback(opened).addErrback(failed)

    def _update(self, found, name, watched):
        if self._stopped or self._watched.get(name) is not watched:
            return  # stopped, or the contact was removed or replaced meanwhile
        candidates = [p for p in found if p is not None]
        if watched.presence is not None:
            candidates.append(watched.presence)
        best = max(candidates, key=lambda p: p.ts, default=None)
        if best is not None and best.ts < self._clock.seconds() - self._ttl:
            best = None  # stale: the contact crashed, or someone replays an old record
        before_status, before = watched.status, watched.presence
        watched.presence = best
        watched.status = best.status if best is not None else OFFLINE
        event = TRANSITIONS.get((before_status, watched.status))
        if event is None and watched.status != OFFLINE and before.route() != best.route():
            event = ADDRESS_CHANGED
        if event is not None:
            for listener in list(self._listeners):
                try:
                    listener(name, event, self.presence(name))
                except Exception:
                    self.log.failure("presence listener failed")
