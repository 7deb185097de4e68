import os
import random
import socket
import stat
import struct
from dataclasses import replace

import pytest
from nacl.bindings import crypto_aead_xchacha20poly1305_ietf_encrypt
from nacl.signing import SigningKey
from twisted.internet import defer
from twisted.internet.task import Clock

from kadchat.blinding import BlindedKey, blind_public_key, blinding_factor, epoch_of
from kadchat.errors import UserError
from kadchat.identity import Identity
from kadchat.presence import (
    AWAY,
    OFFLINE,
    ONLINE,
    PADDED_SIZE,
    Presence,
    PresenceError,
    make_record,
    open_record,
    presence_key,
    record_target,
)
from kadchat.publisher import GAP, PresencePublisher
from kadchat.seqcounter import SeqCounter
from kadchat.tracker import ADDRESS_CHANGED, PresenceTracker
from kademlia.items import MAX_SEQ, MutableItem

T0 = 1_700_000_000.0  # 200 s into epoch 5_666_666; the next epoch starts at T0 + 100
E0 = epoch_of(T0)
ALICE = Identity(SigningKey(bytes([1]) * 32), "alice")
BOB = Identity(SigningKey(bytes([2]) * 32), "bob")
MALLORY = Identity(SigningKey(bytes([3]) * 32), "mallory")
HOME = Presence(ONLINE, addrs=[("198.51.100.7", 40001), ("192.168.1.20", 6881)], nat="consistent",
                introducers=[("203.0.113.9", 6881)], ts=T0)


class DictDHT:
    """Test double for DHTNode: one in-memory store with BEP 44 rules, standing in for the swarm."""

    def __init__(self, clock):
        self.clock = clock
        self.items = {}  # target -> (item, expiry time)
        self.puts = self.gets = 0

    def put(self, item, ttl=None):
        self.puts += 1
        held = self.held(item.target)
        if not item.verify() or (held is not None and (item.seq < held.seq or (item.seq == held.seq and item != held))):
            return defer.succeed(0)
        self.items[item.target] = (item, self.clock.seconds() + (600 if ttl is None else ttl))
        return defer.succeed(1)

    def held(self, target):
        item, expiry = self.items.get(target, (None, 0))
        return item if expiry > self.clock.seconds() else None

    def get(self, target, salt=b""):
        self.gets += 1
        return defer.succeed(self.held(target))


class RecordingDHT(DictDHT):
    """Also notes every put as (time, epoch of the record, seq), as a storage node could."""

    def __init__(self, clock, identity=ALICE, epochs=range(E0 - 2, E0 + 20)):
        super().__init__(clock)
        self.log = []
        self._epochs = {record_target(identity.public_key, e): e for e in epochs}

    def put(self, item, ttl=None):
        self.log.append((self.clock.seconds(), self._epochs.get(item.target), item.seq))
        return super().put(item, ttl)


class HangingDHT:
    """Test double for DHTNode whose queries never answer (until cancelled)."""

    def __init__(self):
        self.pending = []

    def _hang(self):
        d = defer.Deferred()
        self.pending.append(d)
        return d

    def put(self, item, ttl=None):
        return self._hang()

    def get(self, target, salt=b""):
        return self._hang()


class FailingDHT(DictDHT):
    def put(self, item, ttl=None):
        self.puts += 1
        return defer.fail(RuntimeError("network down"))


class SkewedClock(Clock):
    """A Clock reading `offset` seconds away from the true time it is advanced with."""

    def __init__(self, offset):
        super().__init__()
        self.offset = offset

    def seconds(self):
        return super().seconds() + self.offset


def _clock(at=T0, offset=0.0):
    clock = SkewedClock(offset)
    clock.advance(at)
    return clock


def _seq(tmp_path, clock, name="seq"):
    return SeqCounter(str(tmp_path / name), clock.seconds, bytes(ALICE.signing_key))


def _serialized(item):
    return item.k + item.salt + str(item.seq).encode() + item.encoded_v + item.sig + item.target


# -- records -------------------------------------------------------------------

def test_record_round_trips_for_a_contact():
    item = make_record(ALICE, E0, HOME, seq=5)
    assert item.verify() and item.seq == 5
    assert item.target == record_target(ALICE.public_key, E0)
    assert open_record(ALICE.public_key, E0, item) == HOME


def test_record_keeps_millisecond_timestamps():
    presence = Presence(AWAY, ts=T0 + 0.1234)
    assert open_record(ALICE.public_key, E0, make_record(ALICE, E0, presence, 1)).ts == T0 + 0.123


def test_record_stores_nothing_identifying_in_clear():
    item = make_record(ALICE, E0, HOME, seq=1)
    stored = _serialized(item)
    secrets = [ALICE.public_key, ALICE.card.encode(), b"alice", presence_key(ALICE.public_key, E0)]
    for host, port in HOME.addrs + HOME.introducers:
        secrets += [socket.inet_aton(host) + struct.pack("!H", port), host.encode(), str(port).encode()]
    for secret in secrets:
        assert secret not in stored


def test_record_size_does_not_reveal_how_many_addresses():
    sizes = {len(make_record(ALICE, E0, Presence(ONLINE, addrs=[("10.0.0.1", p)] * n), 1).encoded_v)
             for n, p in [(0, 1), (1, 2), (8, 3)]}
    assert len(sizes) == 1 and sizes.pop() <= 1000


def test_epochs_have_unrelated_keys_and_targets():
    items = [make_record(ALICE, e, HOME, 1) for e in range(E0, E0 + 5)]
    assert len({i.k for i in items}) == 5 and len({i.target for i in items}) == 5
    assert ALICE.public_key not in {i.k for i in items}


def test_two_records_of_same_content_are_not_linkable_by_ciphertext():
    a, b = (make_record(ALICE, E0, HOME, 1) for _ in range(2))
    assert a.v != b.v  # fresh nonce each time


def test_presence_key_is_its_own_domain():
    assert presence_key(ALICE.public_key, E0) != presence_key(ALICE.public_key, E0 + 1)
    assert presence_key(ALICE.public_key, E0) != presence_key(BOB.public_key, E0)
    assert presence_key(ALICE.public_key, E0) != blinding_factor(ALICE.public_key, E0)


def test_record_of_another_contact_or_epoch_is_refused():
    item = make_record(ALICE, E0, HOME, 1)
    with pytest.raises(PresenceError, match="not this contact's record"):
        open_record(BOB.public_key, E0, item)
    with pytest.raises(PresenceError, match="not this contact's record"):
        open_record(ALICE.public_key, E0 + 1, item)


def test_tampered_record_is_refused():
    item = make_record(ALICE, E0, HOME, 1)
    flipped = bytes([item.v[-1] ^ 1])
    tampered = MutableItem(item.k, item.salt, item.seq, item.v[:-1] + flipped, item.sig)
    with pytest.raises(PresenceError, match="bad signature"):
        open_record(ALICE.public_key, E0, tampered)
    replayed_seq = MutableItem(item.k, item.salt, item.seq + 1, item.v, item.sig)
    with pytest.raises(PresenceError, match="bad signature"):
        open_record(ALICE.public_key, E0, replayed_seq)


def _owner_signed(v, epoch=E0):
    blinded = BlindedKey(ALICE.signing_key, epoch)
    return MutableItem.create(blinded.public_key, blinded.sign, v, 1)


@pytest.mark.parametrize("v", [b"short", os.urandom(300), 12, [b"x"]])
def test_signed_garbage_is_refused(v):
    with pytest.raises(PresenceError):
        open_record(ALICE.public_key, E0, _owner_signed(v))


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"not bencode",
        b"d1:s6:onlinee",  # no NAT class, no timestamp
        b"d1:n7:unknown1:s5:happy1:ti1ee",
        b"d1:n7:unknown1:s6:online1:ti-1ee",
        b"d1:al3:abce1:n7:unknown1:s6:online1:ti1ee",
        b"li1ee",
    ],
)
def test_well_sealed_but_malformed_payload_is_refused(payload):
    blinded = blind_public_key(ALICE.public_key, E0)
    padded = struct.pack(">H", len(payload)) + payload + bytes(PADDED_SIZE - 2 - len(payload))
    nonce = bytes(24)
    sealed = crypto_aead_xchacha20poly1305_ietf_encrypt(padded, blinded, nonce, presence_key(ALICE.public_key, E0))
    with pytest.raises(PresenceError):
        open_record(ALICE.public_key, E0, _owner_signed(nonce + sealed))


def test_too_many_addresses_or_bad_ones_are_refused_when_publishing():
    with pytest.raises(ValueError):
        make_record(ALICE, E0, Presence(ONLINE, addrs=[("10.0.0.1", 1)] * 9), 1)
    with pytest.raises(ValueError):
        make_record(ALICE, E0, Presence(ONLINE, addrs=[("example.org", 1)]), 1)
    with pytest.raises(ValueError):
        make_record(ALICE, E0, Presence(ONLINE, addrs=[("10.0.0.1", 70000)]), 1)
    with pytest.raises(ValueError):
        make_record(ALICE, E0, Presence("busy"), 1)


def test_only_the_owner_can_write_the_slot():
    clock = _clock()
    dht = DictDHT(clock)
    assert dht.put(make_record(ALICE, E0, HOME, 10)).result == 1
    blinded_alice = blind_public_key(ALICE.public_key, E0)
    # Mallory knows A (she is a contact) but not Alice's private key.
    mallory_key = BlindedKey(MALLORY.signing_key, E0)
    forged = MutableItem.create(blinded_alice, mallory_key.sign, b"x" * 40, 99)
    assert not forged.verify() and dht.put(forged).result == 0
    own = make_record(MALLORY, E0, HOME, 99)
    assert own.target != record_target(ALICE.public_key, E0)
    assert open_record(ALICE.public_key, E0, dht.held(record_target(ALICE.public_key, E0))) == HOME


def test_replayed_older_record_is_refused_by_seq():
    clock = _clock()
    dht = DictDHT(clock)
    old = make_record(ALICE, E0, HOME, 10)
    new = make_record(ALICE, E0, Presence(OFFLINE, ts=T0 + 1), 11)
    assert dht.put(old).result == 1 and dht.put(new).result == 1
    assert dht.put(old).result == 0
    assert dht.held(new.target) == new


# -- sequence numbers ----------------------------------------------------------

def test_seq_grows_within_an_epoch_even_if_the_clock_goes_back(tmp_path):
    clock = _clock()
    seq = _seq(tmp_path, clock)
    first = seq.next(E0)
    assert seq.next(E0) == first + 1
    clock.offset = -3600
    assert seq.next(E0) == first + 2
    clock.offset = 10
    assert seq.next(E0) == first + 10_000_000


def test_seq_survives_a_restart_with_a_clock_behind(tmp_path):
    clock = _clock()
    last = _seq(tmp_path, clock).next(E0)
    clock.offset = -3600
    assert _seq(tmp_path, clock).next(E0) == last + 1
    assert stat.S_IMODE(os.stat(tmp_path / "seq").st_mode) == 0o600


def test_seq_numbers_carry_no_pattern_from_one_epoch_to_the_next(tmp_path):
    """Issue 12, 3: seq was the publish time, the same scale across epochs."""
    clock = _clock()
    seq = _seq(tmp_path, clock)
    values = []
    for e in range(E0, E0 + 6):  # each published at the same point of its epoch
        clock.advance((e * 300 + 20) - clock.seconds())
        values.append(seq.next(e))
    steps = [b - a for a, b in zip(values, values[1:])]
    assert len(set(steps)) == len(steps) and min(steps) < 0 < max(steps)  # neither constant nor monotone
    assert all(abs(step) > 10**12 for step in steps)  # not a clock: 300 s are 3e8 microseconds
    other = SeqCounter(str(tmp_path / "other"), clock.seconds, bytes(BOB.signing_key))
    assert other.next(E0 + 7) - seq.next(E0 + 7) != 0  # the offsets come from a secret of ours


def test_the_seq_file_keeps_a_few_recent_epochs(tmp_path):
    clock = _clock()
    seq = _seq(tmp_path, clock)
    for e in range(E0, E0 + 10):
        seq.next(e)
    assert len((tmp_path / "seq").read_text().splitlines()) == 4


def test_a_seq_file_of_the_former_format_is_taken_over_silently(tmp_path):
    (tmp_path / "seq").write_text(f"{int(T0 * 1_000_000)}\n")
    seq = _seq(tmp_path, _clock())
    assert seq.check() == []
    assert seq.next(E0) > int(T0 * 1_000_000)  # above any seq of the former scheme


@pytest.mark.parametrize("garbage", ["", "garbage", "12 x\n", "1 2 3\n"])
def test_a_seq_file_without_sequence_numbers_is_reset_with_a_warning(tmp_path, garbage):
    (tmp_path / "seq").write_text(garbage)
    clock = _clock()
    seq = _seq(tmp_path, clock)
    warnings = seq.check()
    if garbage:
        [warning] = warnings
        assert "did not hold sequence numbers" in warning and "\n" not in warning
    assert _seq(tmp_path, clock).check() == []
    assert seq.next(E0) > 0


def test_a_seq_file_that_cannot_be_read_stops_the_start(tmp_path):
    (tmp_path / "seq").mkdir()
    with pytest.raises(UserError, match="^cannot use .*seq: Is a directory$"):
        _seq(tmp_path, _clock()).check()


def test_without_check_a_bad_seq_file_makes_next_fail_with_a_value_error(tmp_path):
    (tmp_path / "seq").mkdir()
    with pytest.raises(ValueError, match="cannot use"):  # the publisher logs those
        _seq(tmp_path, _clock()).next(E0)


def test_no_seq_beyond_the_bep44_limit(tmp_path):
    (tmp_path / "seq").write_text(f"{E0} {MAX_SEQ}\n")
    with pytest.raises(ValueError, match="no sequence number left"):
        _seq(tmp_path, _clock()).next(E0)


# -- publisher -------------------------------------------------------------------

def _publisher(tmp_path, clock, dht, source=lambda: HOME, identity=ALICE, **kwargs):
    return PresencePublisher(clock, dht, identity, source, _seq(tmp_path, clock, "seq-" + identity.username),
                             **kwargs)


def _held_presence(dht, identity, epoch):
    item = dht.held(record_target(identity.public_key, epoch))
    return None if item is None else open_record(identity.public_key, epoch, item)


def test_start_publishes_the_current_epoch_at_once(tmp_path):
    clock = _clock()
    dht = DictDHT(clock)
    publisher = _publisher(tmp_path, clock, dht)
    publisher.start()
    assert _held_presence(dht, ALICE, E0) == HOME
    assert _held_presence(dht, ALICE, E0 + 1) is None  # 100 s before the boundary, lead is 60 s
    publisher.stop()


def test_next_epoch_is_published_shortly_before_it_starts_on_its_own(tmp_path):
    """Issue 12, 3: never in the same burst as the current epoch's record."""
    for seed in range(20):
        clock = _clock()
        dht = RecordingDHT(clock)
        publisher = _publisher(tmp_path, clock, dht, lead=60.0, rng=random.Random(seed))
        publisher.start()
        clock.advance(39)
        assert _held_presence(dht, ALICE, E0 + 1) is None
        for _ in range(59):  # to T0 + 98 = boundary - GAP, in steps: Clock.advance runs calls at its end time
            clock.advance(1)
        ahead = _held_presence(dht, ALICE, E0 + 1)
        assert ahead is not None and T0 + 40 + GAP <= ahead.ts <= T0 + 100 - GAP
        current_puts = [when for when, epoch, _ in dht.log if epoch == E0]
        assert min(abs(ahead.ts - when) for when in current_puts) >= GAP
        publisher.stop()
    assert len({when for when, epoch, _ in dht.log if epoch == E0 + 1}) == 1


def test_a_fresh_record_is_always_there_while_online(tmp_path):
    clock = _clock()
    dht = DictDHT(clock)
    publisher = _publisher(tmp_path, clock, dht, refresh=120.0)
    publisher.start()
    for _ in range(2 * 3600 // 7):
        clock.advance(7)
        now = clock.seconds()
        current = _held_presence(dht, ALICE, epoch_of(now))
        assert current is not None and now - current.ts <= 120.0
    publisher.stop()
    assert clock.getDelayedCalls() == []


def test_publish_now_sends_the_new_state_and_keeps_the_schedule(tmp_path):
    clock = _clock()
    dht = DictDHT(clock)
    state = {"presence": HOME}
    publisher = _publisher(tmp_path, clock, dht, source=lambda: state["presence"])
    publisher.start()
    clock.advance(5)
    state["presence"] = Presence(AWAY, addrs=[("198.51.100.7", 40002)])
    publisher.publish_now()
    assert _held_presence(dht, ALICE, E0) == Presence(AWAY, addrs=[("198.51.100.7", 40002)], ts=T0 + 5)
    assert len(clock.getDelayedCalls()) == 1
    publisher.stop()


def test_go_offline_replaces_live_records_with_higher_seq(tmp_path):
    clock = _clock()
    dht = DictDHT(clock)
    publisher = _publisher(tmp_path, clock, dht)
    publisher.start()
    for _ in range(99):  # both E0 and E0 + 1 published
        clock.advance(1)
    online_seq = {e: dht.held(record_target(ALICE.public_key, e)).seq for e in (E0, E0 + 1)}
    d = publisher.go_offline()
    assert d.result is None
    for epoch in (E0, E0 + 1):
        item = dht.held(record_target(ALICE.public_key, epoch))
        assert item.seq > online_seq[epoch]
        assert open_record(ALICE.public_key, epoch, item) == Presence(OFFLINE, ts=T0 + 99)
    assert clock.getDelayedCalls() == []


def test_go_offline_gives_up_after_its_timeout(tmp_path):
    clock = _clock()
    dht = HangingDHT()
    publisher = _publisher(tmp_path, clock, dht, offline_timeout=5.0)
    d = publisher.go_offline()
    assert not d.called
    clock.advance(5)
    assert d.called and d.result is None
    assert all(p.called for p in dht.pending)
    assert clock.getDelayedCalls() == []


def test_stop_cancels_puts_in_flight_and_timers(tmp_path):
    clock = _clock()
    dht = HangingDHT()
    publisher = _publisher(tmp_path, clock, dht)
    publisher.start()
    assert len(dht.pending) == 1
    assert publisher.stop().called
    assert dht.pending[0].called and clock.getDelayedCalls() == []


def test_failing_puts_do_not_stop_republishing(tmp_path):
    clock = _clock()
    dht = FailingDHT(clock)
    publisher = _publisher(tmp_path, clock, dht, refresh=120.0)
    publisher.start()
    clock.advance(120)
    clock.advance(120)
    assert dht.puts >= 3
    publisher.stop()


def test_bad_presence_from_the_source_is_logged_not_raised(tmp_path):
    clock = _clock()
    dht = DictDHT(clock)
    publisher = _publisher(tmp_path, clock, dht, source=lambda: Presence(ONLINE, addrs=[("nohost", 1)]))
    publisher.start()
    assert dht.puts == 0 and len(clock.getDelayedCalls()) == 1
    publisher.stop()


# -- tracker ---------------------------------------------------------------------

class Events:
    def __init__(self):
        self.seen = []

    def presence_changed(self, name, event, presence):
        self.seen.append((name, event, presence))

    def take(self):
        seen, self.seen = self.seen, []
        return seen


class Failing:
    def presence_changed(self, name, event, presence):
        raise ZeroDivisionError("a broken listener")


def _tracker(clock, dht, **kwargs):
    tracker = PresenceTracker(clock, dht, [("alice", ALICE.public_key)], **kwargs)
    events = Events()
    tracker.subscribe(events)
    return tracker, events


def test_contact_comes_online_changes_address_goes_away_and_offline(tmp_path):
    clock = _clock()
    dht = DictDHT(clock)
    state = {"presence": HOME}
    publisher = _publisher(tmp_path, clock, dht, source=lambda: state["presence"])
    tracker, events = _tracker(clock, dht)
    assert tracker.status("alice") == "unknown"
    tracker.refresh()
    assert events.take() == [("alice", OFFLINE, None)]
    publisher.start()
    tracker.refresh()
    assert events.take() == [("alice", ONLINE, HOME)]
    tracker.refresh()
    assert events.take() == []
    clock.advance(3)
    moved = Presence(ONLINE, addrs=[("198.51.100.8", 40001)], nat="random")
    state["presence"] = moved
    publisher.publish_now()
    tracker.refresh()
    assert events.take() == [("alice", ADDRESS_CHANGED, replace(moved, ts=T0 + 3))]
    clock.advance(3)
    state["presence"] = Presence(AWAY, addrs=moved.addrs, nat="random")
    publisher.publish_now()
    tracker.refresh()
    assert [e[1] for e in events.take()] == [AWAY]
    assert tracker.status("alice") == AWAY and tracker.presence("alice").status == AWAY
    clock.advance(3)
    publisher.go_offline()
    tracker.refresh()
    assert events.take() == [("alice", OFFLINE, None)]
    assert tracker.presence("alice") is None


def test_crashed_contact_goes_offline_after_ttl_even_if_someone_replays_the_record(tmp_path):
    clock = _clock()
    dht = DictDHT(clock)
    # Hour-long epochs keep the replayed record in the epoch being looked up throughout.
    publisher = _publisher(tmp_path, clock, dht, epoch_seconds=3600)
    tracker, events = _tracker(clock, dht, ttl=600, epoch_seconds=3600)
    publisher.start()
    tracker.refresh()
    assert [e[1] for e in events.take()] == [ONLINE]
    publisher.stop()  # crash: no offline notice
    last = dht.held(record_target(ALICE.public_key, epoch_of(T0, 3600)))
    for _ in range(70):
        clock.advance(10)
        dht.put(last, ttl=600)  # anyone may re-put a signed item with a fresh ttl
        tracker.refresh()
        if events.seen:
            break
    assert events.take() == [("alice", OFFLINE, None)]
    assert 600 < clock.seconds() - T0 <= 610


def test_a_missed_lookup_does_not_make_a_fresh_contact_flap(tmp_path):
    clock = _clock()
    dht = DictDHT(clock)
    publisher = _publisher(tmp_path, clock, dht)
    tracker, events = _tracker(clock, dht)
    publisher.start()
    tracker.refresh()
    events.take()
    dht.items.clear()  # the swarm lost the record for a moment
    tracker.refresh()
    assert events.take() == [] and tracker.status("alice") == ONLINE
    publisher.stop()


@pytest.mark.parametrize("offset", [-110.0, 110.0, -59.0, 59.0])
def test_clock_skew_of_two_minutes_never_makes_a_contact_look_offline(tmp_path, offset):
    their_clock = _clock(offset=offset)
    our_clock = _clock()
    dht = DictDHT(our_clock)
    publisher = _publisher(tmp_path, their_clock, dht)
    tracker, events = _tracker(our_clock, dht, skew=120.0)
    publisher.start()
    for _ in range(3 * 300 // 5):  # three epoch boundaries, every 5 s
        their_clock.advance(5)
        our_clock.advance(5)
        tracker.refresh()
        assert tracker.status("alice") == ONLINE, our_clock.seconds()
    publisher.stop()


def test_newest_inner_timestamp_wins_across_epochs():
    clock = _clock()
    dht = DictDHT(clock)
    dht.put(make_record(ALICE, E0, Presence(OFFLINE, ts=T0 - 5), 1))
    dht.put(make_record(ALICE, E0 + 1, Presence(ONLINE, ts=T0 - 10), 2))
    tracker, events = _tracker(clock, dht, skew=120.0)
    tracker.refresh()
    assert tracker.status("alice") == OFFLINE
    dht.put(make_record(ALICE, E0 + 1, Presence(ONLINE, ts=T0 - 1), 3))
    tracker.refresh()
    assert tracker.status("alice") == ONLINE


def test_records_that_fail_to_open_are_ignored():
    clock = _clock()

    class WrongItemDHT(DictDHT):
        def get(self, target, salt=b""):  # a storage node answering with someone else's item
            return defer.succeed(make_record(MALLORY, E0, HOME, 1))

    tracker, events = _tracker(clock, WrongItemDHT(clock))
    tracker.refresh()
    assert events.take() == [("alice", OFFLINE, None)]


def test_failing_lookups_are_treated_as_nothing_found():
    clock = _clock()

    class BrokenDHT(DictDHT):
        def get(self, target, salt=b""):
            return defer.fail(RuntimeError("boom"))

    tracker, events = _tracker(clock, BrokenDHT(clock))
    d = tracker.refresh()
    assert d.called and events.take() == [("alice", OFFLINE, None)]


def test_lookups_time_out():
    clock = _clock()
    dht = HangingDHT()
    tracker, events = _tracker(clock, dht, lookup_timeout=30.0)
    d = tracker.refresh()
    assert not d.called
    clock.advance(30)
    assert d.called and events.take() == [("alice", OFFLINE, None)]
    assert clock.getDelayedCalls() == []


def test_refresh_while_refreshing_joins_the_running_one():
    clock = _clock()
    dht = HangingDHT()
    tracker, _ = _tracker(clock, dht)
    first, second = tracker.refresh(), tracker.refresh()
    lookups = len(dht.pending)
    assert lookups in (1, 2)  # the epochs of now - skew, now, now + skew
    for d in list(dht.pending):
        d.callback(None)
    assert first.called and second.called


def test_stop_cancels_lookups_and_reports_nothing_more():
    clock = _clock()
    dht = HangingDHT()
    tracker, events = _tracker(clock, dht, interval=10.0)
    tracker.start()
    assert dht.pending
    assert tracker.stop().called
    assert all(d.called for d in dht.pending)
    assert events.take() == [] and clock.getDelayedCalls() == []


def test_start_refreshes_every_interval(tmp_path):
    clock = _clock()
    dht = DictDHT(clock)
    publisher = _publisher(tmp_path, clock, dht)
    tracker, events = _tracker(clock, dht, interval=10.0)
    tracker.start()
    assert [e[1] for e in events.take()] == [OFFLINE]
    publisher.start()
    clock.advance(10)
    assert [e[1] for e in events.take()] == [ONLINE]
    gets = dht.gets
    clock.advance(10)
    assert dht.gets > gets
    tracker.stop()
    publisher.stop()
    assert clock.getDelayedCalls() == []


def test_removed_contact_gets_no_more_events(tmp_path):
    clock = _clock()
    dht = HangingDHT()
    tracker, events = _tracker(clock, dht)
    tracker.refresh()
    tracker.remove_contact("alice")
    for d in list(dht.pending):
        d.callback(None)
    assert events.take() == []


def test_contacts_can_be_added_later_and_one_failing_listener_does_not_stop_others(tmp_path):
    clock = _clock()
    dht = DictDHT(clock)
    _publisher(tmp_path, clock, dht, identity=BOB).start()
    tracker = PresenceTracker(clock, dht)
    tracker.subscribe(Failing())
    events = Events()
    tracker.subscribe(events)
    tracker.add_contact("bob", BOB.public_key)
    tracker.refresh()
    assert [(n, e) for n, e, _ in events.take()] == [("bob", ONLINE)]


def test_many_contacts_are_told_apart():
    clock = _clock()
    dht = DictDHT(clock)
    rng = random.Random(4)
    people = [Identity(SigningKey(rng.randbytes(32)), f"p{i}") for i in range(10)]
    for i, person in enumerate(people):
        status = ONLINE if i % 2 else AWAY
        dht.put(make_record(person, E0, Presence(status, addrs=[("10.0.0.%d" % i, 1000 + i)], ts=T0), 1))
    tracker = PresenceTracker(clock, dht, [(p.username, p.public_key) for p in people])
    tracker.refresh()
    for i, person in enumerate(people):
        assert tracker.status(person.username) == (ONLINE if i % 2 else AWAY)
        assert tracker.presence(person.username).addrs == (("10.0.0.%d" % i, 1000 + i),)


# -- with the real DHT -------------------------------------------------------------

def test_presence_travels_through_a_simulated_swarm_of_real_dht_nodes(tmp_path):
    from kademlia.node import DHTNode
    from kademlia.sim import SimClock, SimNetwork

    clock = SimClock(start=T0)
    network = SimNetwork(clock, seed=11)
    nodes = []
    for i in range(16):
        node = DHTNode(clock, node_id=random.Random(i).randbytes(20))
        node.attach(network, network.next_address())
        nodes.append(node)
    for node in nodes[1:]:
        node.bootstrap([nodes[0].address])
        clock.advance(5)
    alice_node, bob_node = nodes[3], nodes[12]
    publisher = _publisher(tmp_path, clock, alice_node)
    tracker, events = _tracker(clock, bob_node)
    published_at = clock.seconds()
    publisher.start()
    clock.advance(5)
    tracker.refresh()
    clock.advance(10)
    # The next epoch's record, out on its own a little later, may be the one found.
    [(name, status, found)] = events.take()
    assert (name, status, replace(found, ts=0)) == ("alice", ONLINE, replace(HOME, ts=0))
    assert published_at <= found.ts <= clock.seconds()
    publisher.go_offline()
    clock.advance(10)
    tracker.refresh()
    clock.advance(10)
    assert [e[1] for e in events.take()] == [OFFLINE]
    for node in nodes:
        node.stop()


def _lookup_times(clock, dht, seconds, step=1.0):
    """Clock times (from now) at which the tracker looked alice up, over `seconds`."""
    start, seen, gets = clock.seconds(), [], dht.gets
    while clock.seconds() - start < seconds:
        clock.advance(step)
        if dht.gets > gets:
            seen.append(round(clock.seconds() - start))
            gets = dht.gets
    return seen


def test_without_news_lookups_back_off_from_30_seconds_to_5_minutes():
    clock = _clock()
    dht = DictDHT(clock)
    tracker, events = _tracker(clock, dht)
    tracker.start()
    assert _lookup_times(clock, dht, 1000) == [30, 60, 120, 240, 480, 780]  # gaps 30 30 60 120 240 300
    tracker.stop()
    assert clock.getDelayedCalls() == []


def test_news_brings_the_next_lookup_back_to_30_seconds(tmp_path):
    clock = _clock()
    dht = DictDHT(clock)
    tracker, events = _tracker(clock, dht)
    tracker.start()
    assert _lookup_times(clock, dht, 100) == [30, 60]
    _publisher(tmp_path, clock, dht).start()  # alice comes online at +100; next look-up due at +120
    assert _lookup_times(clock, dht, 150) == [20, 50, 80, 140]  # found at +120; then 30, 30, 60 s gaps
    # online again: a newer record (republished), and still no session with her
    assert [e for _, e, _ in events.take()] == [OFFLINE, ONLINE, ONLINE]


def test_connected_contacts_are_not_looked_up_and_a_lost_session_is_looked_up_at_once():
    clock = _clock()
    dht = DictDHT(clock)
    tracker, events = _tracker(clock, dht, interval=10.0)
    tracker.start()
    tracker.set_connected("alice", True)
    gets = dht.gets
    clock.advance(100)
    tracker.refresh()
    assert dht.gets == gets
    tracker.set_connected("alice", False)
    assert dht.gets > gets
    assert _lookup_times(clock, dht, 25) == [10, 20]
    tracker.stop()


class SlowPutDHT(DictDHT):
    """A DictDHT whose puts take `delay` seconds to be stored, as on a real swarm."""

    def __init__(self, clock, delay=1.0):
        super().__init__(clock)
        self.delay = delay

    def put(self, item, ttl=None):
        d = defer.Deferred()
        self.clock.callLater(self.delay, lambda: super(SlowPutDHT, self).put(item, ttl).chainDeferred(d))
        return d


def test_two_contacts_starting_together_find_each_other_at_their_first_lookup(tmp_path):
    # Each one's start look-up runs while both puts are still on their way; looking up
    # only once our own record is stored, one of the two is sure to find the other.
    clock = _clock()
    dht = SlowPutDHT(clock)
    trackers = []
    for me, other in ((ALICE, BOB), (BOB, ALICE)):
        publisher = _publisher(tmp_path, clock, dht, identity=me)
        tracker = PresenceTracker(clock, dht, [(other.username, other.public_key)])
        events = Events()
        tracker.subscribe(events)
        tracker.start(after=publisher.start())
        trackers.append((publisher, tracker, events))
    clock.advance(1)
    found = [e for _, _, events in trackers for _, e, _ in events.take()]
    assert ONLINE in found
    for publisher, tracker, _ in trackers:
        tracker.stop()
        publisher.stop()
    assert clock.getDelayedCalls() == []


def test_a_tracker_stopped_before_our_first_record_is_out_looks_nothing_up():
    clock = _clock()
    dht = DictDHT(clock)
    tracker, events = _tracker(clock, dht)
    first_put = defer.Deferred()
    tracker.start(after=first_put)
    assert dht.gets == 0
    tracker.stop()
    first_put.callback(1)
    assert dht.gets == 0 and events.take() == [] and clock.getDelayedCalls() == []


def _alice_online_and_tracked(tmp_path):
    """alice's publisher and a tracker that has just found her: (clock, publisher, tracker, events)."""
    clock = _clock()
    dht = DictDHT(clock)
    publisher = _publisher(tmp_path, clock, dht)
    publisher.start()
    tracker, events = _tracker(clock, dht)
    tracker.start()
    assert [e for _, e, _ in events.take()] == [ONLINE]
    return clock, publisher, tracker, events


def test_after_a_session_is_lost_each_lookup_reports_the_record_again_and_a_newer_one_always_does(tmp_path):
    # A contact that went silent and came back (a network outage, a frozen laptop) keeps
    # the record we saw before its session: without a report nobody would reach it again.
    clock, publisher, tracker, events = _alice_online_and_tracked(tmp_path)
    tracker.set_connected("alice", True)
    clock.advance(60)
    tracker.set_connected("alice", False)  # looks alice up at once: the same record
    assert [e for _, e, _ in events.take()] == [ONLINE]
    tracker.refresh()
    assert [e for _, e, _ in events.take()] == [ONLINE]  # still lost: reach it again
    tracker.set_connected("alice", True)
    clock.advance(1)
    publisher.publish_now()
    tracker.refresh()
    assert events.take() == []  # connected: looked up no more
    tracker.stop()
    publisher.stop()


def test_a_contact_never_connected_is_reported_again_only_for_a_newer_record(tmp_path):
    clock, publisher, tracker, events = _alice_online_and_tracked(tmp_path)
    tracker.refresh()
    assert events.take() == []
    clock.advance(1)
    publisher.publish_now()
    tracker.refresh()
    assert [e for _, e, _ in events.take()] == [ONLINE]
    tracker.stop()
    publisher.stop()


def test_a_contact_added_while_a_refresh_is_in_flight_is_looked_up_at_once(tmp_path):
    # A refresh() then joins the one in flight, which does not cover the new contact:
    # it waited for the next refresh (seen: 100 contacts added at once, late by 17-60 s).
    clock = _clock()
    dht = DictDHT(clock)
    _publisher(tmp_path, clock, dht, identity=BOB).start()
    stuck, alice_targets = HangingDHT(), {record_target(ALICE.public_key, e) for e in (E0 - 1, E0, E0 + 1)}

    class SlowForAlice:
        def get(self, target, salt=b""):
            return stuck.get(target) if target in alice_targets else dht.get(target, salt)

    tracker = PresenceTracker(clock, SlowForAlice(), [("alice", ALICE.public_key)])
    events = Events()
    tracker.subscribe(events)
    tracker.start()
    assert stuck.pending  # the start's refresh waits for alice's look-ups
    tracker.add_contact("bob", BOB.public_key)
    tracker.refresh()
    assert [(n, e) for n, e, _ in events.take()] == [("bob", ONLINE)]
    tracker.stop()
