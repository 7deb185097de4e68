"""PresenceTracker: follows our contacts' presence records (kadchat.presence) in the DHT.

Contacts with a live session tell us themselves (kadchat.liveness): the DHT is
looked up only for the others, at start, on demand (Refresh), and then on a
PollSchedule: with -r every `interval` seconds, else soon after a look-up that
found something new and less and less often while nothing changes.
"""

from typing import Protocol

from twisted.internet import defer
from twisted.logger import Logger

from kadchat.blinding import epoch_of
from kadchat.presence import AWAY, OFFLINE, ONLINE, SALT, Presence, open_record, record_target
from kademlia.timers import SingleFlight, cancel


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


class PollSchedule:
    """Seconds until a contact's next look-up: `fixed` if given, else `first` after a
    look-up that found news, doubling with each one that found none, up to `longest`."""

    def __init__(self, fixed=None, first=30.0, longest=300.0):
        self.fixed = fixed
        self.first = first
        self.longest = longest

    def delay(self, misses):
        if self.fixed is not None:
            return self.fixed
        return min(self.longest, self.first * 2 ** max(misses - 1, 0))


class _Watched:
    def __init__(self, public_key):
        self.public_key = public_key
        self.status = UNKNOWN_STATUS
        self.presence = None  # newest believable record seen, offline ones included
        self.connected = False  # a live session speaks for the contact: no look-ups
        self.misses = 0  # look-ups in a row that found nothing new
        self.due = None  # clock time of the next scheduled look-up
        self.lookup = None  # the look-up in flight
        self.lost = False  # its live session ended and none has come up since


class PresenceListener(Protocol):
    def presence_changed(self, name: str, event: str, presence: Presence | None) -> None:
        """`event` is online, away, offline or ADDRESS_CHANGED; `presence` is the
        contact's current record while online or away, else None. A contact without a
        live session is reported online (or away) again at each look-up after it lost
        one (say to a network outage) and whenever a newer record shows: reach it again."""


class PresenceTracker:
    """Looks up contacts' records and tells listeners (PresenceListener) of changes.

    Each look-up covers the epochs of now - skew, now and now + skew, so a
    contact whose clock differs from ours by up to `skew` seconds is found. The
    record with the newest inner timestamp wins; one older than `ttl` counts as
    offline, whoever keeps re-putting it.

    Records are looked for under the presence secret the contact gave us
    (`secret_of(key)`, b"" if none); if none is found, at its request point
    (kadchat.presence), which names only introducers: enough for a handshake,
    whose session brings the contact's current secret.
    """

    log = Logger()

    def __init__(self, clock, dht, contacts=(), epoch_seconds=300, ttl=600,
                 skew=120.0, interval=None, lookup_timeout=30.0, schedule=None, secret_of=lambda key: b""):
        self._clock = clock
        self._secret_of = secret_of
        self._dht = dht
        self._epoch_seconds = epoch_seconds
        self._ttl = ttl
        self._skew = skew
        self._lookup_timeout = lookup_timeout
        self._watched = {name: _Watched(key) for name, key in contacts}
        self._listeners = []
        self._pending = set()
        self._schedule = schedule or PollSchedule(fixed=interval)
        self._refresh = SingleFlight(self._refresh_all)
        self._timer = None
        self._running = False  # between start() and stop(): look-ups are scheduled
        self._stopped = False  # after stop(): results are ignored

    def add_contact(self, name, public_key):
        """Watch a new contact: looked up at once if we are running (a refresh already in
        flight, which a refresh() now would join, does not cover it)."""
        watched = self._watched[name] = _Watched(public_key)
        if self._running:
            self._poll(name, watched)

    def remove_contact(self, name):
        self._watched.pop(name, None)

    def rename_contact(self, name, new_name):
        if name in self._watched:
            self._watched[new_name] = self._watched.pop(name)

    def subscribe(self, listener: PresenceListener):
        self._listeners.append(listener)

    def status(self, name) -> str:
        """online, away, offline or unknown (not looked up yet)."""
        return self._watched[name].status

    def presence(self, name):
        """The contact's current Presence while online or away, else None."""
        watched = self._watched[name]
        return watched.presence if watched.status in (ONLINE, AWAY) else None

    def start(self, after=None):
        """Look everyone up now, or once `after` fires, then each on the schedule.

        `after`: our own first record is out. Two contacts that start together
        each look the other up before either record is stored, find nothing, and
        would not look again for `PollSchedule.first` seconds; a look-up that
        begins after our put ended is sure to find (or be found by) the other."""
        self._running, self._stopped = True, False
        if after is None:
            self.refresh()
        else:
            after.addBoth(self._first_refresh)

    def _first_refresh(self, result):
        if self._running:
            self.refresh()
        return result

    def stop(self):
        self._running, self._stopped = False, True
        self._timer = cancel(self._timer)
        for d in list(self._pending):
            d.cancel()
        return defer.succeed(None)

    def refresh(self):
        """Look up every contact without a live session; fires (never fails) when done.
        Joins a refresh already running."""
        return self._refresh()

    def set_connected(self, name, connected):
        """A live session with the contact came up (no more look-ups) or ended (look it up now)."""
        watched = self._watched.get(name)
        if watched is None or watched.connected == connected:
            return
        watched.connected = connected
        watched.lost = not connected
        watched.misses = 0
        if connected:
            watched.due = None
            self._reschedule()
        elif self._running:
            self._poll(name, watched)

    def look_up(self, public_key):
        """Look the contact up now (say, under a secret it just gave us), unless connected; a
        look-up in flight, begun under what we held before, is followed by a new one."""
        name = next((n for n, w in self._watched.items() if w.public_key == public_key), None)
        watched = self._watched.get(name)
        if watched is None or watched.connected or not self._running:
            return
        if watched.lookup is None:
            self._poll(name, watched)
        else:
            watched.lookup.addBoth(lambda result: (self.look_up(public_key), result)[1])

    def _refresh_all(self):
        polls = [self._poll(name, watched) for name, watched in list(self._watched.items()) if not watched.connected]
        return defer.DeferredList(polls, consumeErrors=True)

    def _poll(self, name, watched):
        """Look the contact up, unless a look-up is in flight; fires when it is done."""
        if watched.lookup is not None:
            done = defer.Deferred()
            watched.lookup.addBoth(lambda result: (done.callback(None), result)[1])
            return done
        now = self._clock.seconds()
        epochs = sorted({epoch_of(t, self._epoch_seconds) for t in (now - self._skew, now, now + self._skew)})
        watched.due = None
        secret = self._secret_of(watched.public_key)
        lookup = watched.lookup = self._lookups(watched.public_key, epochs, secret)
        if secret:
            lookup.addCallback(self._or_request_point, watched.public_key, epochs)
        lookup.addCallback(self._update, name, watched)
        lookup.addBoth(self._polled, watched)
        return lookup

    def _polled(self, result, watched):
        watched.lookup = None  # even if it ended before _poll stored it: nothing is in flight
        if self._running and not watched.connected:
            watched.due = self._clock.seconds() + self._schedule.delay(watched.misses)
        self._reschedule()
        return result

    def _reschedule(self):
        """One timer, for the earliest look-up due."""
        self._timer = cancel(self._timer)
        due = [w.due for w in self._watched.values() if w.due is not None]
        if due and self._running:
            self._timer = self._clock.callLater(max(0.0, min(due) - self._clock.seconds()), self._poll_due)

    def _poll_due(self):
        self._timer = None
        now = self._clock.seconds()
        for name, watched in list(self._watched.items()):
            if watched.due is not None and watched.due <= now + 1e-6:  # timers land on float sums
                self._poll(name, watched)

    def _lookups(self, public_key, epochs, secret):
        return defer.gatherResults([self._lookup(public_key, e, secret) for e in epochs])

    def _or_request_point(self, found, public_key, epochs):
        """Nothing alive under the secret we hold: an old one, maybe (they rotated it, and what
        it opens says "offline"); their request point then says whether they are there."""
        if any(p is not None and p.status != OFFLINE for p in found):
            return found
        points = self._lookups(public_key, epochs, b"")
        return points.addCallback(lambda points: points if any(p is not None for p in points) else found)

    def _lookup(self, public_key, epoch, secret):
        """The contact's Presence for `epoch`, or None (nothing there, or nothing valid)."""
        try:
            target = record_target(public_key, epoch, secret)
        except ValueError:
            return defer.succeed(None)
        d = self._dht.get(target, salt=SALT)
        d.addTimeout(self._lookup_timeout, self._clock)
        self._pending.add(d)

        def opened(item):
            self._pending.discard(d)
            return None if item is None else open_record(public_key, epoch, item, secret)

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
        news = event is not None or (best is not None and best != before)
        if event is None and watched.status != OFFLINE and not watched.connected and (
                watched.lost or best.ts > before.ts):
            event = watched.status  # alive since, and no session (any more): worth reaching again
        watched.misses = 0 if news else watched.misses + 1
        if event is not None:
            for listener in list(self._listeners):
                try:
                    listener.presence_changed(name, event, self.presence(name))
                except Exception:
                    self.log.failure("presence listener failed")
