"""Private presence: where a user can be reached, readable by their contacts only.

Record for epoch e (DESIGN.md, "Identity, contacts and private presence"): a BEP 44
mutable item with k = A_e (the identity key blinded for e, kadchat.blinding),
salt = SALT, seq = publish time in microseconds (`SeqCounter`), and v = nonce ||
XChaCha20-Poly1305(key_e, payload, ad=A_e), where key_e = BLAKE2b keyed with A
and personalised "kadchat-presence" over e (a domain apart from the blinding
hash). The payload is a bencoded dict, length-prefixed and zero-padded to a
fixed size so record lengths say nothing about their contents:

    s: status (online | away | offline)   a: [compact address, ...]
    n: NAT class (consistent | random | unknown)
    i: [compact introducer address, ...]  t: publish time, unix milliseconds

Storage nodes see an unlinkable key, a signature and ciphertext; only someone
who knows A finds (record_target) and reads (open_record) the record.

`PresencePublisher` keeps our records in the DHT; `PresenceTracker` follows
our contacts' records and tells listeners when they change.
"""

import hashlib
import os
import struct
from dataclasses import dataclass, replace

from nacl.bindings import (
    crypto_aead_xchacha20poly1305_ietf_decrypt,
    crypto_aead_xchacha20poly1305_ietf_encrypt,
    crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
)
from nacl.encoding import RawEncoder
from nacl.exceptions import CryptoError
from nacl.hash import blake2b
from twisted.internet import defer, task
from twisted.logger import Logger

from kadchat.addrvote import CONSISTENT, RANDOM, UNKNOWN
from kadchat.blinding import BlindedKey, blind_public_key, epoch_of
from kadchat.files import atomic_write
from kademlia import bencode, krpc
from kademlia.items import MutableItem

ONLINE, AWAY, OFFLINE = "online", "away", "offline"
STATUSES = (ONLINE, AWAY, OFFLINE)
NAT_CLASSES = (CONSISTENT, RANDOM, UNKNOWN)
SALT = b""  # k already differs per epoch; an empty salt is the BEP 44 default
MAX_ADDRS = 8
MAX_INTRODUCERS = 4
PADDED_SIZE = 256  # 2-byte length + payload + zero padding
_NONCE_BYTES = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
_PERSONAL = b"kadchat-presence"


class PresenceError(ValueError):
    """A record that is not a valid presence record of this contact for this epoch."""


@dataclass(frozen=True)
class Presence:
    status: str
    addrs: tuple = ()  # ((ip, port), ...) candidates to reach the user at
    nat: str = UNKNOWN
    introducers: tuple = ()  # ((ip, port), ...) DHT nodes that can pass a message on
    ts: float = 0.0  # unix time of publication, by the publisher's clock

    def __post_init__(self):
        object.__setattr__(self, "addrs", tuple(tuple(a) for a in self.addrs))
        object.__setattr__(self, "introducers", tuple(tuple(a) for a in self.introducers))

    def route(self):
        """What a contact needs to reach us; a change of it is worth telling the UI."""
        return self.addrs, self.nat, self.introducers


# -- the record ----------------------------------------------------------------

def presence_key(public_key: bytes, epoch: int) -> bytes:
    """The symmetric key of the record of identity `public_key` for `epoch`."""
    return blake2b(struct.pack(">Q", epoch), digest_size=32, key=public_key,
                   person=_PERSONAL, encoder=RawEncoder)


def _encode_addresses(addresses, limit, what):
    if len(addresses) > limit:
        raise ValueError(f"at most {limit} {what}")
    try:
        return [krpc.encode_address(a) for a in addresses]
    except (OSError, TypeError, ValueError, struct.error) as e:
        raise ValueError(f"bad {what}: {e}") from None


def _encode_payload(presence: Presence) -> bytes:
    if presence.status not in STATUSES or presence.nat not in NAT_CLASSES:
        raise ValueError("bad status or NAT class")
    payload = bencode.encode({
        b"s": presence.status,
        b"a": _encode_addresses(presence.addrs, MAX_ADDRS, "addresses"),
        b"n": presence.nat,
        b"i": _encode_addresses(presence.introducers, MAX_INTRODUCERS, "introducers"),
        b"t": int(round(presence.ts * 1000)),
    })
    if len(payload) > PADDED_SIZE - 2:
        raise ValueError("presence payload too large")
    return struct.pack(">H", len(payload)) + payload + bytes(PADDED_SIZE - 2 - len(payload))


def _decode_addresses(value, limit):
    if not isinstance(value, list) or len(value) > limit:
        raise PresenceError("bad address list")
    if any(not isinstance(a, bytes) or len(a) != krpc.COMPACT_ADDR_LENGTH for a in value):
        raise PresenceError("bad compact address")
    return tuple(krpc.decode_address(a) for a in value)


def _decode_payload(padded: bytes) -> Presence:
    if len(padded) != PADDED_SIZE:
        raise PresenceError("bad payload size")
    (length,) = struct.unpack(">H", padded[:2])
    try:
        fields = bencode.decode(padded[2:2 + length]) if length <= PADDED_SIZE - 2 else None
    except bencode.DecodeError:
        fields = None
    if not isinstance(fields, dict):
        raise PresenceError("payload is not a bencoded dict")
    status, nat, ts = fields.get(b"s"), fields.get(b"n"), fields.get(b"t")
    if not isinstance(status, bytes) or status.decode("latin-1") not in STATUSES:
        raise PresenceError("bad status")
    if not isinstance(nat, bytes) or nat.decode("latin-1") not in NAT_CLASSES:
        raise PresenceError("bad NAT class")
    if not isinstance(ts, int) or ts < 0:
        raise PresenceError("bad timestamp")
    return Presence(
        status=status.decode(),
        addrs=_decode_addresses(fields.get(b"a", []), MAX_ADDRS),
        nat=nat.decode(),
        introducers=_decode_addresses(fields.get(b"i", []), MAX_INTRODUCERS),
        ts=ts / 1000,
    )


def make_record(identity, epoch: int, presence: Presence, seq: int) -> MutableItem:
    """Our signed, encrypted record for `epoch`; `identity` is a kadchat.identity.Identity."""
    blinded = BlindedKey(identity.signing_key, epoch)
    nonce = os.urandom(_NONCE_BYTES)
    sealed = crypto_aead_xchacha20poly1305_ietf_encrypt(
        _encode_payload(presence), blinded.public_key, nonce, presence_key(identity.public_key, epoch)
    )
    return MutableItem.create(blinded.public_key, blinded.sign, nonce + sealed, seq, salt=SALT)


def record_target(contact_public_key: bytes, epoch: int) -> bytes:
    """The DHT target (20 bytes) of a contact's record for `epoch`."""
    return hashlib.sha1(blind_public_key(contact_public_key, epoch) + SALT).digest()


def open_record(contact_public_key: bytes, epoch: int, item: MutableItem) -> Presence:
    """The presence in a contact's record; PresenceError unless it is genuinely theirs for `epoch`."""
    try:
        blinded = blind_public_key(contact_public_key, epoch)
    except ValueError as e:
        raise PresenceError(str(e)) from None
    if item.k != blinded or item.salt != SALT:
        raise PresenceError("not this contact's record for this epoch")
    if not item.verify():
        raise PresenceError("bad signature")
    if not isinstance(item.v, bytes) or len(item.v) <= _NONCE_BYTES:
        raise PresenceError("record value is not a sealed payload")
    try:
        padded = crypto_aead_xchacha20poly1305_ietf_decrypt(
            item.v[_NONCE_BYTES:], blinded, item.v[:_NONCE_BYTES], presence_key(contact_public_key, epoch)
        )
    except CryptoError:
        raise PresenceError("record does not decrypt") from None
    return _decode_payload(padded)


class SeqCounter:
    """BEP 44 seq numbers: publish time in microseconds, strictly increasing across restarts.

    The last value is kept in a small file, so a clock that jumps back cannot
    make our new records lose against our own older ones.
    """

    log = Logger()

    def __init__(self, path, now):
        self._path = path
        self._now = now
        self._last = None

    def _load(self):
        try:
            with open(self._path, "rb") as f:
                return int(f.read(32).strip())
        except FileNotFoundError:
            return 0
        except (OSError, ValueError) as e:
            self.log.warn("ignoring unreadable sequence file {path}: {error}", path=self._path, error=e)
            return 0

    def next(self) -> int:
        if self._last is None:
            self._last = self._load()
        value = max(int(self._now() * 1_000_000), self._last + 1)
        atomic_write(self._path, b"%d\n" % value, mode=0o600)
        self._last = value
        return value


# -- publishing our own records --------------------------------------------------

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
        self._running = True
        self._tick()

    def stop(self):
        """Stop republishing and cancel puts in flight."""
        self._running = False
        self._cancel_timer()
        for d in list(self._pending):
            d.cancel()
        return defer.succeed(None)

    def publish_now(self):
        """Publish at once; fires (never fails) when the puts are done."""
        self._cancel_timer()
        d = self._publish(self._source())
        self._schedule()
        return d

    def go_offline(self):
        """Stop, and replace every record still alive with an "offline" one; fires when done or timed out."""
        self._running = False
        self._cancel_timer()
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
        self._publish(self._source())
        self._schedule()

    def _cancel_timer(self):
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None

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


# -- following our contacts ---------------------------------------------------

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
