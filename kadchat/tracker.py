"""PresenceTracker: follows our contacts' presence records (kadchat.presence) in the DHT."""

from typing import Protocol

from twisted.internet import defer
from twisted.logger import Logger

from kadchat.blinding import epoch_of
from kadchat.presence import AWAY, OFFLINE, ONLINE, SALT, Presence, open_record, record_target
from kademlia.timers import Loop, SingleFlight


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


class PresenceListener(Protocol):
    def presence_changed(self, name: str, event: str, presence: Presence | None) -> None:
        """`event` is online, away, offline or ADDRESS_CHANGED; `presence` is the
        contact's current record while online or away, else None."""


class PresenceTracker:
    """Looks up contacts' records and tells listeners (PresenceListener) of changes.

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
        self._lookup_timeout = lookup_timeout
        self._watched = {name: _Watched(key) for name, key in contacts}
        self._listeners = []
        self._pending = set()
        self._loop = Loop(clock, interval, self.refresh)
        self._refresh = SingleFlight(self._refresh_all)
        self._stopped = False

    def add_contact(self, name, public_key):
        self._watched[name] = _Watched(public_key)

    def remove_contact(self, name):
        self._watched.pop(name, None)

    def subscribe(self, listener: PresenceListener):
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
        self._loop.start(now=True)

    def stop(self):
        self._stopped = True
        for d in list(self._pending):
            d.cancel()
        return self._loop.stop()

    def refresh(self):
        """Look everyone up; fires (never fails) when done. Joins a refresh already running."""
        return self._refresh()

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
                    listener.presence_changed(name, event, self.presence(name))
                except Exception:
                    self.log.failure("presence listener failed")
