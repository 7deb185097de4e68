"""Mailbox: offline delivery through dead drops (kadchat.deaddrop), both directions.

Writing (`DropWriter`): a message waiting in the outbox for a contact who is
not connected (or whose direct attempt failed) gets drops at our next free
positions for that contact; the drops are put with a 51-hour `ttl`, checked
every pass and put again every `republish` seconds (plain BEP 44 nodes ignore
our `ttl` and keep items for their own time), until the contact's
acknowledgement shows at a drop's position, the message is delivered directly,
or the drops are older than RETENTION. Message states: `queued` once it waits
for drops, `stored` once a node accepted each of its drops (the sender may now
quit), `delivered` on the receipt; expired drops make it `queued` again (the
outbox still has it for a direct session).

Reading (`DropReader`): each pass reads a contact's slots from where the last
pass left off (at most RETENTION back) up to the next slot (clock skew), each
slot from index 0 until the first empty position, three slots at a time.
A position is empty only if a second lookup (paced after the first) finds
nothing either: a storage node past an address's value budget answers as if
it held nothing (kademlia.reflection).
Complete messages are handed to `deliver` in seq order (it stores them, de-
duplicated by message id), and only then acknowledged. The next pass starts a
slot back (drops still coming in the current one) or at the oldest incomplete
message.

Our presence secret (deaddrop SECRET, kadchat.presencesecret): a contact
without a session who does not hold our current secret gets one SECRET drop,
placed before any message, tended like a fragment until its ACK (the contact
then holds it), and forgotten when a session hands the secret or ours rotates
(the next drop carries the new one). The reader hands SECRET drops on
(`secret_received`) and acknowledges them. Once ours is stored and we hold none
of the contact's, its recent slots are read once more GLANCE_DELAY later (once
a run): two who start together each read before the other's drop is out.

Bounds: per contact at most `budget` of our drops outstanding (64 x 944 bytes),
new messages never start past the next slot, so a contact gets at most
PER_SLOT drops an hour from us beyond a burst; a reader looks at no more than
PER_SLOT positions per slot of a contact's, RETENTION back.
"""

from collections import defaultdict

from twisted.internet import defer, task
from twisted.logger import Logger
from twisted.python.failure import Failure

from kadchat.deaddrop import (
    ACK_SEQ, DROP_TTL, PER_SLOT, RETENTION, DropError, Fragment, Pair, Position,
    Receipt, SecretDrop, secret_id, slot_of, split,
)
from kadchat.history import StoredMessage
from kadchat.model import MessageState
from kadchat.presencesecret import NoSecrets
from kademlia.timers import Loop, SingleFlight, cancel

LOOKUP_TIMEOUT = 30.0
FAILED = object()  # what DHTCalls.get gives for a lookup that failed, timed out or was cancelled
SEND_DELAY = 5.0  # seconds a new message waits for a session before it goes into drops
GLANCE_DELAY = 15.0  # seconds after our SECRET drop is stored: read the contact's recent slots once more
LOOKUP_RATE = 2.0  # a second: within what storage nodes send an address that has not proven itself
MAX_CHAIN_SLOTS = 4  # slots read past the window while a contact's chain runs on


class DHTCalls:
    """The DHT calls of one part: each with a timeout, all cancelled by `stop()`; counted.

    With `rate`, lookups start at most that many a second: storage nodes send
    values to an address that has not proven itself within a byte budget
    (kademlia.reflection: 3,000 bytes a second) and withhold them past it, which
    looks like an empty drop; libtorrent blocks an IP past 5 queries a second.
    """

    log = Logger()

    def __init__(self, clock, dht, timeout=LOOKUP_TIMEOUT, rate=None):
        self._clock = clock
        self._dht = dht
        self._timeout = timeout
        self._gap = 1.0 / rate if rate else 0.0
        self._next_start = 0.0
        self._pending = set()
        self._closed = False
        self.stats = defaultdict(int)  # gets, puts, put_bytes

    def _track(self, call, default, *args, **kw):
        if self._closed:  # stopping: what is left of a pass ends without the network, each call
            return task.deferLater(self._clock, 0, lambda: default)  # a turn later (no recursion)
        now = self._clock.seconds()
        wait, self._next_start = max(0.0, self._next_start - now), max(now, self._next_start) + self._gap
        if wait:
            d = task.deferLater(self._clock, wait, call, *args, **kw)
        else:
            d = defer.maybeDeferred(call, *args, **kw)
        d.addTimeout(self._timeout + wait, self._clock)
        self._pending.add(d)

        def done(result):
            self._pending.discard(d)
            if isinstance(result, Failure):
                if not result.check(defer.CancelledError, defer.TimeoutError):
                    self.log.warn("dead drop query failed: {error}", error=result.value)
                return default
            return result
        return d.addBoth(done)

    def get(self, target):
        """The item, None if nobody holds one, FAILED if the lookup did not finish."""
        self.stats["gets"] += 1
        return self._track(self._dht.get, FAILED, target)

    def put(self, item):
        self.stats["puts"] += 1
        self.stats["put_bytes"] += len(item.encoded_v)
        return self._track(self._dht.put, 0, item, ttl=DROP_TTL)

    def cancel_all(self):
        self._closed = True
        for d in list(self._pending):
            d.cancel()


class DropWriter:
    def __init__(self, clock, net, pairs, store, history, has_session, set_state,
                 budget=64, republish=1800.0, secrets=NoSecrets, secret_stored=lambda peer: None):
        self._clock = clock
        self._net = net
        self._pairs = pairs  # peer key -> deaddrop.Pair
        self._store = store
        self._history = history
        self._has_session = has_session
        self._set_state = set_state  # (peer, message id, MessageState) -> None
        self._budget = budget
        self._republish = republish
        self._secrets = secrets  # kadchat.presencesecret: ours, and who holds it
        self._secret_stored = secret_stored  # (peer) -> None: a node accepted our new SECRET drop

    def peers(self, contacts=()):
        """Whom we have drops for, or something to place: a message, or (of `contacts`) our secret."""
        due = {peer for peer in contacts if self._secret_due(peer) is not None}
        return set(self._history.peers_with_pending()) | {d.peer for d in self._store.drops()} | due

    def _secret_due(self, peer):
        """The SECRET drop `peer` should find: ours, unless it holds it or a session hands it."""
        s = self._secrets
        if not s.own or s.holds_ours(peer) or self._has_session(peer):
            return None
        return SecretDrop(s.own, s.own_made_us)

    @defer.inlineCallbacks
    def write(self, peer):
        """Check and republish our drops for `peer`, then place drops for what still waits:
        our secret first (it is how the contact finds us), then the messages."""
        self._forget_stale_secret(peer)
        yield defer.gatherResults([self._tend(drop, self._clock.seconds()) for drop in self._store.drops(peer)])
        now = self._clock.seconds()
        self._forget_stale_secret(peer)  # (a rotation, or a session, while the tending went on)
        secret = self._secret_due(peer)
        if secret is not None and self._store.secret_drop(peer) is None:
            self._place_secret(peer, secret, now)
        pending = self._history.pending_for(peer)
        placed = self._store.message_ids(peer)
        for message_id in placed - {m.id for m in pending}:
            self._store.forget(peer, message_id)  # delivered directly meanwhile
        for message in pending:
            if message.id in placed or (self._has_session(peer) and message.state != MessageState.FAILED):
                continue
            if now - message.timestamp > RETENTION:
                continue  # its drops (if any) expired: only a direct session takes it now
            if not self._place(peer, message, pending[0].seq, now):
                break  # over budget or rate: the next pass, in order
        fresh = [drop for drop in self._store.drops(peer) if drop.last_put is None]
        yield defer.gatherResults([self._tend(drop, now) for drop in fresh])
        stored = defaultdict(list)
        for drop in self._store.drops(peer):
            if not drop.secret:
                stored[drop.message_id].append(drop.last_put is not None)
        for message_id, accepted in stored.items():
            if all(accepted):
                self._set_state(peer, message_id, MessageState.STORED)
        secret_drop = self._store.secret_drop(peer)
        if any(d.secret for d in fresh) and secret_drop is not None and secret_drop.last_put is not None:
            self._secret_stored(peer)

    def _forget_stale_secret(self, peer):
        """Our SECRET drop for `peer` stops being tended once it is not the one due: our secret
        rotated (a drop with the new one replaces it), or a session handed the secret."""
        drop, due = self._store.secret_drop(peer), self._secret_due(peer)
        if drop is not None and (due is None or drop.message_id != secret_id(due.secret)):
            self._store.forget(peer, drop.message_id)

    def _first_free(self, peer, count, now):
        """Where `count` new drops for `peer` start, None if over budget or past the next slot."""
        if self._store.count(peer) + count > self._budget:
            return None
        first = max(self._store.next_position(peer) or Position(0, 0), Position(slot_of(now), 0))
        return first if first.slot <= slot_of(now) + 1 else None

    def _place(self, peer, message, base, now):
        chunks = split(message.text)
        first = self._first_free(peer, len(chunks), now)
        if first is None:
            return False
        placed, position = [], first
        for i, chunk in enumerate(chunks):
            fragment = Fragment(message.id, message.seq, base, int(message.timestamp * 1e6), int(now * 1e6),
                                i, len(chunks), chunk)
            placed.append((position, self._pairs(peer).outgoing(position).data(fragment)))
            position = position.next()
        self._store.add(peer, message.id, placed, now, position)
        self._set_state(peer, message.id, MessageState.QUEUED)
        return True

    def _place_secret(self, peer, secret, now):
        position = self._first_free(peer, 1, now)
        if position is not None:
            item = self._pairs(peer).outgoing(position).secret(secret)
            self._store.add(peer, secret_id(secret.secret), [(position, item)], now, position.next(), secret=True)

    @defer.inlineCallbacks
    def _tend(self, drop, now):
        if now - drop.created > RETENTION:
            self._store.forget(drop.peer, drop.message_id)
            if not drop.secret:  # (a secret still due gets a new drop)
                self._set_state(drop.peer, drop.message_id, MessageState.QUEUED)
            return
        slot = self._pairs(drop.peer).outgoing(drop.position)
        held = yield self._net.get(slot.target)
        if held is FAILED:
            held = None  # unknown: put it again, in case it is gone
        if held is not None and held.seq >= ACK_SEQ:
            try:
                receipt = slot.open(held)
            except DropError:
                receipt = None
            if isinstance(receipt, Receipt) and receipt.message_id == drop.message_id:
                self._store.forget(drop.peer, drop.message_id)
                if not drop.secret:
                    self._set_state(drop.peer, drop.message_id, MessageState.DELIVERED)
                elif drop.message_id == secret_id(self._secrets.own):  # (not rotated meanwhile)
                    self._secrets.handed(drop.peer)
            return
        if held is None or drop.last_put is None or now - drop.last_put >= self._republish:
            accepted = yield self._net.put(drop.item)
            if accepted:
                self._store.put_accepted(drop.peer, drop.position, now)


class DropReader:
    def __init__(self, clock, net, pairs, store, deliver, parallel=3, secret_received=lambda peer, drop: None):
        self._clock = clock
        self._net = net
        self._paced = defer.DeferredSemaphore(parallel)  # slots read at once: foreign nodes rate-limit us
        self._pairs = pairs
        self._store = store
        self._deliver = deliver  # (peer, StoredMessage, base) -> None; stores it once per id
        self._secret_received = secret_received  # (peer, SecretDrop) -> None; keeps the newest

    @defer.inlineCallbacks
    def read(self, peer, recent=False):
        """Read `peer`'s drops to us since the last pass; deliver and acknowledge them.
        `recent`: only the slots about now, an extra look that leaves the next pass's start as it is."""
        now = self._clock.seconds()
        current, oldest = slot_of(now), max(0, slot_of(now - RETENTION))
        last = self._store.read_slot(peer)
        start = oldest if last is None else max(last, oldest)
        if recent:
            start = max(start, current - 1)
        slots = list(range(start, current + 2))
        scans = yield defer.gatherResults([self._paced.run(self._scan, peer, s) for s in slots])
        while len(scans[-1][0]) == PER_SLOT and len(slots) < current + 2 - start + MAX_CHAIN_SLOTS:
            slots.append(slots[-1] + 1)  # a full slot: the chain may go on in the next
            scans.append((yield self._scan(peer, slots[-1])))
        found = [f for f, _ in scans]
        unfinished = [slot for slot, (_, finished) in zip(slots, scans) if not finished]
        messages = defaultdict(dict)  # id -> {fragment index: (position, Fragment)}
        secrets = []
        for position, content in (pair for slot in found for pair in slot):
            if isinstance(content, Fragment) and now - content.stored_us / 1e6 <= RETENTION:
                messages[content.message_id][content.index] = (position, content)
            elif isinstance(content, SecretDrop):
                secrets.append((position, content))
        for position, secret in sorted(secrets, key=lambda found: found[1].made_us):
            yield self._take_secret(peer, position, secret)
        done = {i for i, m in messages.items() if set(m) == set(range(next(iter(m.values()))[1].count))}
        for message_id in sorted(done, key=lambda i: messages[i][0][1].seq):
            yield self._take(peer, messages[message_id])
        waiting = [min(p for p, _ in m.values()).slot for i, m in messages.items() if i not in done]
        if not recent:
            self._store.set_read_slot(peer, min([current - 1] + waiting + unfinished))

    @defer.inlineCallbacks
    def _scan(self, peer, slot):
        """([(position, Fragment | Receipt)] from index 0 of `slot` up to its first empty
        position, whether the scan got there: False if a lookup failed on the way)."""
        found = []
        for index in range(PER_SLOT):
            position = Position(slot, index)
            drop = self._pairs(peer).incoming(position)
            item = yield self._net.get(drop.target)
            if item is None:  # empty, or withheld by nodes that spent our value budget
                item = yield self._net.get(drop.target)
            if item is FAILED:
                return found, False
            if item is None:
                break
            try:
                found.append((position, drop.open(item)))
            except DropError:
                continue  # (only the two of us can sign here: a bug, not an attack)
        return found, True

    def _take(self, peer, parts):
        first = parts[0][1]
        text = b"".join(parts[i][1].chunk for i in range(first.count)).decode("utf-8", errors="replace")
        message = StoredMessage(first.message_id, peer, False, first.seq, text, first.sent_us / 1e6,
                                MessageState.HELD)
        self._deliver(peer, message, first.base)  # stored before any acknowledgement
        receipts = [self._net.put(self._pairs(peer).incoming(p).ack(Receipt(f.message_id, f.index, f.count)))
                    for p, f in parts.values()]
        return defer.gatherResults(receipts)

    def _take_secret(self, peer, position, secret):
        self._secret_received(peer, secret)  # kept (or refused as older) before the acknowledgement
        return self._net.put(self._pairs(peer).incoming(position).ack(Receipt(secret_id(secret.secret), 0, 1)))


class Mailbox:
    """Both directions for every contact, on a loop; `check()` runs a pass now."""

    log = Logger()

    def __init__(self, clock, dht, signing_key, contacts, store, history, has_session, deliver, set_state,
                 interval=300.0, republish=1800.0, budget=64, rate=None,
                 secrets=NoSecrets, secret_received=lambda peer, drop: None):
        self._clock = clock
        self._has_session = has_session
        self._set_state = set_state
        self._signing_key = signing_key
        self._contacts = contacts  # () -> [contact key]
        self._store = store
        self._secrets = secrets
        self._pair_cache = {}
        self._soon = {}  # peer -> the delayed write send_soon scheduled
        self._glances = {}  # peer -> the extra read _secret_stored scheduled (once a run)
        self.net = DHTCalls(clock, dht, rate=rate)
        self.writer = DropWriter(clock, self.net, self._pair, store, history, has_session, set_state,
                                 budget, republish, secrets, self._secret_stored)
        self.reader = DropReader(clock, self.net, self._pair, store, deliver, secret_received=secret_received)
        self._pass = SingleFlight(self._run)
        self._loop = Loop(clock, interval, self.check)

    def _pair(self, peer):
        pair = self._pair_cache.get(peer)
        if pair is None:
            pair = self._pair_cache[peer] = Pair(self._signing_key, peer)
        return pair

    def start(self):
        self._loop.start(now=True)

    def stop(self, grace=5.0):
        """Stop; a pass in flight (receipts we owe) gets `grace` seconds to end, then is cancelled."""
        self._loop.stop()
        for call in list(self._soon.values()) + list(self._glances.values()):
            cancel(call)
        self._soon.clear()
        if not self._pass.in_flight:
            self.net.cancel_all()
            return defer.succeed(None)
        late = self._clock.callLater(grace, self.net.cancel_all)
        return self._pass().addBoth(lambda _: cancel(late))

    def check(self):
        """One pass (shared with one in flight): read every contact's drops, tend ours."""
        return self._pass()

    def queued(self, peer, message_id):
        """A message for `peer` was just stored: unless a session carries it, it shows
        queued and, while we are in the swarm, goes into drops soon."""
        if self._has_session(peer):
            return
        self._set_state(peer, message_id, MessageState.QUEUED)
        if self._loop.running:
            self.send_soon(peer)

    def send_soon(self, peer):
        """A message now waits for `peer`, who is not connected: place its drops in
        `SEND_DELAY` seconds, unless a session comes up first (the writer skips
        messages going out over one), so a contact about to connect costs no drops."""
        if peer not in self._soon:
            self._soon[peer] = self._clock.callLater(SEND_DELAY, self._send_now, peer)

    def _send_now(self, peer):
        del self._soon[peer]
        self.writer.write(peer).addErrback(self._failed)

    def hand_secret(self, peers):
        """Our secret is new to `peers` (added, or ours rotated): while we are in the swarm,
        those not connected get it in a drop soon."""
        if self._loop.running:
            for peer in peers:
                if not self._has_session(peer):
                    self.send_soon(peer)

    def _secret_stored(self, peer):
        """Our secret is in `peer`'s drops now. If we have none of theirs yet, they may have
        started with us and put theirs after our pass read past it: look once more, soon."""
        if peer not in self._glances and not self._secrets.of(peer) and not self._has_session(peer):
            self._glances[peer] = self._clock.callLater(GLANCE_DELAY, self._glance, peer)

    def _glance(self, peer):
        self._glances[peer] = None  # done: not again this run
        if not self._secrets.of(peer) and not self._has_session(peer):
            self.reader.read(peer, recent=True).addErrback(self._failed)

    def _run(self):
        contacts = set(self._contacts())
        reads = [self.reader.read(peer) for peer in contacts]
        writes = [self.writer.write(peer) for peer in self.writer.peers(contacts) if peer in contacts]
        d = defer.gatherResults(reads + writes, consumeErrors=True)
        return d.addCallbacks(lambda _: None, self._failed)

    def _failed(self, failure):
        if not failure.check(defer.CancelledError):
            self.log.failure("dead drop pass failed", failure)
