"""PresencePublisher: keeps our own presence records (kadchat.presence) in the DHT."""

from dataclasses import replace

from twisted.internet import defer
from twisted.logger import Logger

from kadchat.blinding import epoch_of
from kadchat.presence import OFFLINE, Presence, make_record
from kademlia.timers import cancel


class PresencePublisher:
    """Keeps our presence records in the DHT.

    Each publication puts the current epoch's record and, within `lead` seconds
    of the next epoch, that epoch's record too, so contacts whose clocks run a
    little ahead find us. It republishes every `refresh` seconds while running,
    and `publish_now()` when the status or addresses change.
    """

    log = Logger()

    def __init__(self, clock, dht, identity, presence_source, seq_counter,
                 epoch_seconds=300, ttl=600, refresh=120.0, lead=60.0, offline_timeout=5.0):
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
        self._running = False
        self._call = None
        self._pending = set()
        self._published = {}  # epoch -> clock time of our latest put for it

    def start(self):
        """Publish now and then on the schedule; fires (never fails) when the first puts are done."""
        self._running = True
        return self._tick()

    def stop(self):
        """Stop republishing and cancel puts in flight."""
        self._running = False
        self._call = cancel(self._call)
        for d in list(self._pending):
            d.cancel()
        return defer.succeed(None)

    def publish_now(self):
        """Publish at once; fires (never fails) when the puts are done."""
        self._call = cancel(self._call)
        d = self._publish(self._source())
        self._schedule()
        return d

    def go_offline(self):
        """Stop, and replace every record still alive with an "offline" one; fires when done or timed out."""
        self._running = False
        self._call = cancel(self._call)
        now = self._clock.seconds()
        current = epoch_of(now, self._epoch_seconds)
        live = {e for e, when in self._published.items() if when > now - self._ttl and e >= current - 1}
        presence = Presence(status=OFFLINE, ts=now)
        d = defer.gatherResults([self._put(e, presence) for e in sorted(live | {current})])
        d.addTimeout(self._offline_timeout, self._clock)
        d.addErrback(lambda f: self.log.warn("offline notice not confirmed: {error}", error=f.value))
        return d.addCallback(lambda _: None)

    def _tick(self):
        self._call = None
        d = self._publish(self._source())
        self._schedule()
        return d

    def _next_lead_time(self, now):
        return (epoch_of(now, self._epoch_seconds) + 1) * self._epoch_seconds - self._lead

    def _schedule(self):
        if not self._running:
            return
        now = self._clock.seconds()
        until_lead = self._next_lead_time(now) - now
        delay = min(self._refresh, until_lead) if until_lead > 0 else self._refresh
        self._call = self._clock.callLater(delay, self._tick)

    def _publish(self, presence):
        now = self._clock.seconds()
        current = epoch_of(now, self._epoch_seconds)
        epochs = [current]
        if now >= self._next_lead_time(now) - 1e-6:  # tolerance: timers land on float sums
            epochs.append(current + 1)
        presence = replace(presence, ts=now)
        return defer.gatherResults([self._put(e, presence) for e in epochs])

    def _put(self, epoch, presence):
        now = self._clock.seconds()
        self._published = {e: t for e, t in self._published.items() if t > now - self._ttl}
        try:
            item = make_record(self._identity, epoch, presence, self._seq.next())
        except (ValueError, OSError) as e:  # a bad presence from the source, or no disk
            self.log.error("cannot make presence record: {error}", error=e)
            return defer.succeed(0)
        self._published[epoch] = now
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
