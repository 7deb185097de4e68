"""PresencePublisher: keeps our own presence records (kadchat.presence) in the DHT."""

import random
from dataclasses import replace

from twisted.internet import defer
from twisted.logger import Logger

from kadchat.blinding import epoch_of
from kadchat.presence import OFFLINE, ONLINE, Presence, make_record
from kadchat.presencesecret import NoSecrets
from kademlia.timers import cancel

GAP = 2.0  # seconds, at least, between the puts of two epochs' records (issue 12, 3)


class PresencePublisher:
    """Keeps our presence records in the DHT.

    Each publication puts the current epoch's record. Within `lead` seconds of
    the next epoch, that epoch's record goes out too, so that contacts whose
    clocks run a little ahead find us; on its own, at a random moment of the
    window and at least `GAP` seconds from other puts, so that a storage node
    or an observer cannot pair the two records by their timing. It
    republishes every `refresh` seconds while running, and `publish_now()`
    when the status or addresses change.

    With `secrets` (kadchat.presencesecret), each put is of two records: the
    one under our presence secret, for contacts, and the request point (only
    our introducers, kadchat.presence) with `request_seq` numbers of its own.
    `rotated(old)` overwrites what the old secret still opens with "offline".
    """

    log = Logger()

    def __init__(self, clock, dht, identity, presence_source, seq_counter,
                 epoch_seconds=300, ttl=600, refresh=120.0, lead=60.0, offline_timeout=5.0, rng=None,
                 secrets=NoSecrets, request_seq=None, renew_id=lambda: None):
        """`renew_id()` gives the DHT node a new id: called before a put for another epoch
        than the last one's, so that no node id is seen putting two epochs' records (every
        KRPC query carries it; issue 12, 3)."""
        self._secrets = secrets
        self._renew_id = renew_id
        self._id_epoch = None  # the epoch whose records the DHT node's current id has put
        self._request_seq = request_seq
        self._clock = clock
        self._dht = dht
        self._identity = identity
        self._source = presence_source  # () -> Presence; its ts is replaced at publication
        self._seq = seq_counter
        self._epoch_seconds = epoch_seconds
        self._ttl = ttl
        self._refresh = refresh
        self._lead = lead
        self._offline_timeout = offline_timeout
        self._rng = rng or random.SystemRandom()
        self._running = False
        self._call = None
        self._ahead_call = None
        self._first = None  # start()'s Deferred, until the first publication is out
        self._ahead_done = None  # (epoch, presence without ts) last published ahead of its epoch
        self._pending = set()
        self._published = {}  # epoch -> clock time of our latest put for it

    def start(self):
        """Publish now and then on the schedule; fires (never fails) when the first puts are done."""
        self._running = True
        self._first = first = defer.Deferred()  # _tick may put off the first publication
        self._tick()
        return first

    def stop(self):
        """Stop republishing and cancel puts in flight."""
        self._running = False
        self._call = cancel(self._call)
        self._ahead_call = cancel(self._ahead_call)
        for d in list(self._pending):
            d.cancel()
        return defer.succeed(None)

    def publish_now(self):
        """Publish at once; fires (never fails) when the puts are done."""
        self._call = cancel(self._call)
        d = self._publish(self._source())
        self._plan_ahead()
        self._schedule()
        return d

    def go_offline(self):
        """Stop, and replace every record still alive with an "offline" one; fires when done or timed out."""
        self._running = False
        self._call = cancel(self._call)
        self._ahead_call = cancel(self._ahead_call)
        now = self._clock.seconds()
        current = epoch_of(now, self._epoch_seconds)
        live = {e for e, when in self._published.items() if when > now - self._ttl and e >= current - 1}
        presence = Presence(status=OFFLINE, ts=now)
        d = defer.gatherResults([self._put(e, presence) for e in sorted(live | {current})])
        d.addTimeout(self._offline_timeout, self._clock)
        d.addErrback(lambda f: self.log.warn("offline notice not confirmed: {error}", error=f.value))
        return d.addCallback(lambda _: None)

    def rotated(self, old_secret):
        """Our secret changed: what the old one opens says "offline" now, the new one is out at once."""
        now = self._clock.seconds()
        current = epoch_of(now, self._epoch_seconds)
        live = {e for e, when in self._published.items() if when > now - self._ttl and e >= current - 1}
        offline = Presence(status=OFFLINE, ts=now)
        for epoch in sorted(live):
            self._put_record(epoch, offline, old_secret, self._seq)
        if self._running:
            self.publish_now()

    def _tick(self):
        self._call = None
        if self._too_close(epoch_of(self._clock.seconds(), self._epoch_seconds), self._ahead_call):
            self._call = self._clock.callLater(2 * GAP, self._tick)
            return
        d = self._publish(self._source())
        first, self._first = self._first, None
        if first is not None:
            d.addBoth(lambda result: first.callback(None) or result)
        self._plan_ahead()
        self._schedule()

    def _next_lead_time(self, now):
        return (epoch_of(now, self._epoch_seconds) + 1) * self._epoch_seconds - self._lead

    def _schedule(self):
        if not self._running:
            return
        now = self._clock.seconds()
        until_lead = self._next_lead_time(now) - now
        delay = min(self._refresh, until_lead) if until_lead > 0 else self._refresh
        next_epoch = epoch_of(now, self._epoch_seconds) + 1
        if self._ahead_call is None and (self._ahead_done or (None,))[0] != next_epoch:
            # Too late to publish ahead: publish as soon as the epoch begins.
            delay = min(delay, until_lead + self._lead + self._rng.uniform(0, GAP))
        self._call = self._clock.callLater(max(delay, 0), self._tick)

    def _publish(self, presence):
        now = self._clock.seconds()
        return self._put(epoch_of(now, self._epoch_seconds), replace(presence, ts=now)).addCallback(lambda n: [n])

    def _plan_ahead(self):
        """In the lead window, plan the next epoch's put unless it is out with this presence already."""
        now = self._clock.seconds()
        if not self._running or self._ahead_call is not None or now < self._next_lead_time(now) - 1e-6:
            return  # tolerance: timers land on float sums
        next_epoch = epoch_of(now, self._epoch_seconds) + 1
        if self._ahead_done == (next_epoch, replace(self._source(), ts=0)):
            return
        start, end = now + GAP, next_epoch * self._epoch_seconds - GAP
        if start < end:
            self._ahead_call = self._clock.callLater(self._rng.uniform(start, end) - now, self._put_ahead, next_epoch)

    def _put_ahead(self, epoch):
        self._ahead_call = None
        if self._too_close(epoch, self._call):
            self._ahead_call = self._clock.callLater(2 * GAP, self._put_ahead, epoch)
            return
        presence = self._source()
        self._ahead_done = (epoch, replace(presence, ts=0))
        self._put(epoch, replace(presence, ts=self._clock.seconds()))

    def _too_close(self, epoch, other_call):
        """Whether a put for `epoch` now would be within GAP of one for another epoch, done or due."""
        now = self._clock.seconds()
        due = other_call is not None and other_call.getTime() - now < GAP
        return due or any(e != epoch and now - when < GAP for e, when in self._published.items())

    def _put(self, epoch, presence):
        now = self._clock.seconds()
        self._published = {e: t for e, t in self._published.items() if t > now - self._ttl}
        self._published[epoch] = now
        secret = self._secrets.own
        ours = self._put_record(epoch, presence, secret, self._seq)
        if not secret:
            return ours
        # Its time, as any put's, is what a storage node sees anyway; a contact that falls back
        # to it after a rotation must find it newer than the record it held.
        point = (presence if presence.status == OFFLINE else  # we left: say so there too
                 Presence(status=ONLINE, introducers=presence.introducers, ts=presence.ts))
        both = [ours, self._put_record(epoch, point, b"", self._request_seq)]
        return defer.gatherResults(both).addCallback(lambda accepted: accepted[0])  # neither fails

    def _put_record(self, epoch, presence, secret, seq):
        if self._id_epoch not in (None, epoch):
            self._renew_id()
        self._id_epoch = epoch
        try:
            item = make_record(self._identity, epoch, presence, seq.next(epoch), secret)
        except (ValueError, OSError) as e:  # a bad presence from the source, or no disk
            self.log.error("cannot make presence record: {error}", error=e)
            return defer.succeed(0)
        d = self._dht.put(item, ttl=self._ttl)
        self._pending.add(d)

        def stored(accepted):
            self._pending.discard(d)
            level = self.log.debug if accepted else self.log.warn
            level("presence {status} for epoch {epoch}: {accepted} nodes stored it",
                  status=presence.status, epoch=epoch, accepted=accepted)
            return accepted

        def failed(failure):
            self._pending.discard(d)
            if not failure.check(defer.CancelledError):
                self.log.warn("presence put for epoch {epoch} failed: {error}", epoch=epoch, error=failure.value)
            return 0

        return d.addCallbacks(stored, failed)
