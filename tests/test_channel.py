"""kadchat.channel: sealed datagrams, replay window, key retirement."""

import random
import tracemalloc

import pytest
from hypothesis import given, strategies as st

from kadchat import wire
from kadchat.channel import (
    REPLAY_WINDOW, Channel, ChannelStats, Expired, Limits, Replayed, ReplayWindow, Tampered)
from kadchat.handshake import SessionKeys

K1, K2 = b"1" * 32, b"2" * 32


def pair(limits=Limits(), created=0.0):
    stats_a, stats_b = ChannelStats(), ChannelStats()
    a = Channel(SessionKeys(K1, K2, 10, 20, b"B" * 32, True), created, stats_a, limits)
    b = Channel(SessionKeys(K2, K1, 20, 10, b"A" * 32, False), created, stats_b, limits)
    return a, b


def test_sealed_datagram_opens_on_the_other_side_only():
    a, b = pair()
    datagram = a.seal(b"hello bob", now=1.0)
    packet = wire.decode(datagram)
    assert packet.receiver_index == 20 and packet.counter == 0
    assert b"hello bob" not in datagram
    assert b.open(packet, now=1.0) == b"hello bob"
    with pytest.raises(Tampered):  # a's receive key is the other direction's
        a.open(wire.decode(a.seal(b"x", 1.0)), 1.0)


def test_replayed_datagram_is_refused_and_counted():
    a, b = pair()
    packet = wire.decode(a.seal(b"once", 0.0))
    b.open(packet, 0.0)
    with pytest.raises(Replayed):
        b.open(packet, 0.0)
    assert (b.stats.opened, b.stats.replayed) == (1, 1)


@pytest.mark.parametrize("position", [3, 8, 12, 13, 20])  # index, counter, ciphertext, tag
def test_any_flipped_bit_is_tampering(position):
    a, b = pair()
    datagram = bytearray(a.seal(b"twenty bytes payload", 0.0))
    datagram[position] ^= 0x04
    packet = wire.decode(bytes(datagram))
    with pytest.raises(Tampered):
        b.open(packet._replace(receiver_index=20), 0.0)
    assert b.stats.tampered == 1 and b.stats.opened == 0


def test_tampered_copy_does_not_burn_the_genuine_counter():
    a, b = pair()
    genuine = a.seal(b"payload", 0.0)
    forged = genuine[:-1] + bytes([genuine[-1] ^ 1])
    with pytest.raises(Tampered):
        b.open(wire.decode(forged), 0.0)
    assert b.open(wire.decode(genuine), 0.0) == b"payload"


def test_reordered_datagrams_inside_the_window_are_accepted_once():
    a, b = pair()
    packets = [wire.decode(a.seal(b"%d" % i, 0.0)) for i in range(500)]
    random.Random(7).shuffle(packets)
    assert sorted(int(b.open(p, 0.0)) for p in packets) == list(range(500))
    for p in packets[:50]:
        with pytest.raises(Replayed):
            b.open(p, 0.0)


def test_datagram_older_than_the_window_is_refused():
    a, b = pair()
    old = wire.decode(a.seal(b"old", 0.0))
    for _ in range(2048):
        a.seal(b"skip", 0.0)
    b.open(wire.decode(a.seal(b"new", 0.0)), 0.0)
    with pytest.raises(Replayed):
        b.open(old, 0.0)


@given(st.lists(st.integers(0, 5000), max_size=300))
def test_replay_window_matches_a_set_based_model(counters):
    window = ReplayWindow(size=64)
    accepted, top = set(), -1
    for c in counters:
        expected = c not in accepted and c > top - 64
        assert window.fresh(c) == expected
        if expected:
            window.mark(c)
            accepted.add(c)
            top = max(top, c)


def test_rekey_is_asked_for_after_n_messages_or_t_seconds():
    a, _ = pair(Limits(rekey_after_messages=3, rekey_after_time=120.0))
    for _ in range(2):
        a.seal(b"", 0.0)
    assert not a.needs_rekey(119.0)
    a.seal(b"", 0.0)
    assert a.needs_rekey(0.0)
    fresh, _ = pair(Limits(rekey_after_time=120.0))
    assert fresh.needs_rekey(120.0) and not fresh.expired(120.0)


def test_retired_keys_neither_seal_nor_open():
    a, b = pair(Limits(reject_after_time=180.0))
    late = wire.decode(a.seal(b"late", 179.0))
    with pytest.raises(Expired):
        a.seal(b"", 180.0)
    with pytest.raises(Expired):
        b.open(late, 180.0)
    assert b.stats.undecryptable == 1


def test_counter_exhaustion_retires_the_keys():
    a, _ = pair(Limits(reject_after_messages=2))
    a.seal(b"", 0.0)
    a.seal(b"", 0.0)
    with pytest.raises(Expired):
        a.seal(b"", 0.0)


def test_a_counter_jump_far_past_the_window_resets_it_in_constant_memory():
    # Finding 6: a jump of 2**33 used to build a 2**33-bit integer (3.7 s, 2.2 GB).
    window = ReplayWindow()
    window.mark(5)
    tracemalloc.start()
    window.mark(5 + 2**33)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 64 * 1024, f"mark() allocated {peak} bytes for one jump of 2**33"
    assert window.bitmap_bits <= REPLAY_WINDOW, f"bitmap of {window.bitmap_bits} bits"
    assert not window.fresh(5 + 2**33) and window.fresh(5 + 2**33 + 1)
    assert not window.fresh(5)  # far older than the window now
    assert window.fresh(5 + 2**33 - 1)  # just below the new top: never seen, inside the window
