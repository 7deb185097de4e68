"""The file transfer's pure parts: Merkle tree, chunk bitmap, safe names, the LEDBAT window."""

import os

import pytest
from twisted.internet import task

from kadchat.transfer import merkle
from kadchat.transfer.bitmap import ChunkBitmap
from kadchat.transfer.ledbat import TARGET, Ledbat
from kadchat.transfer.names import MAX_NAME_BYTES, claim_path, default_downloads, safe_name


def test_root_changes_with_any_leaf_and_with_order():
    leaves = [merkle.leaf_hash(bytes([i]) * 10) for i in range(5)]
    root = merkle.root_of(leaves)
    assert merkle.root_of(leaves) == root
    for i in range(5):
        changed = list(leaves)
        changed[i] = merkle.leaf_hash(b"other")
        assert merkle.root_of(changed) != root
    assert merkle.root_of(leaves[::-1]) != root
    assert merkle.root_of(leaves[:4]) != root  # a dropped chunk shows
    assert merkle.root_of([]) != merkle.root_of([merkle.leaf_hash(b"")])


def test_a_leaf_cannot_pass_for_an_inner_node():
    a, b = merkle.leaf_hash(b"a"), merkle.leaf_hash(b"b")
    assert merkle.root_of([a, b]) != merkle.leaf_hash(a + b)


def test_hash_file_cuts_fixed_chunks(tmp_path):
    data = os.urandom(2 * merkle.CHUNK_SIZE + 5)
    path = tmp_path / "f"
    path.write_bytes(data)
    size, leaves, root = merkle.hash_file(path)
    assert size == len(data) and len(leaves) == 3 == merkle.chunk_count(size)
    assert leaves[2] == merkle.leaf_hash(data[2 * merkle.CHUNK_SIZE:])
    assert merkle.chunk_length(size, 2) == 5
    assert root == merkle.root_of(leaves)


def test_bitmap_round_trips_and_ignores_bits_past_the_end():
    bitmap = ChunkBitmap(11)
    assert bitmap.add(0) and bitmap.add(10) and not bitmap.add(10)
    again = ChunkBitmap(11, bitmap.to_bytes())
    assert 0 in again and 10 in again and 5 not in again and again.held == 2
    assert ChunkBitmap(3, b"\xff").held == 3
    assert ChunkBitmap(3, b"\xff").complete
    with pytest.raises(IndexError):
        bitmap.add(11)
    assert 11 not in bitmap and -1 not in bitmap
    other = ChunkBitmap(11)
    other.merge_page(1, bitmap.page(1, 1))
    assert other.missing() == list(range(10))
    bitmap.discard(0)
    assert bitmap.missing() == list(range(10))


@pytest.mark.parametrize("offered, expected", [
    ("report.pdf", "report.pdf"),
    ("../../etc/passwd", "etc_passwd"),
    ("..", "file"),
    ("/abs/path.txt", "abs_path.txt"),
    ("a\\b.txt", "a_b.txt"),
    ("evil\x00name\n.txt", "evil_name_.txt"),
    ("gnp.\u202eexe", "gnp._exe"),  # a right-to-left override, that would show "exe.png"
    (".bashrc", "bashrc"),
    ("CON.txt", "_CON.txt"),
    ("", "file"),
    ("   ", "file"),
])
def test_safe_names(offered, expected):
    assert safe_name(offered) == expected


def test_overlong_names_are_cut_keeping_the_extension():
    name = safe_name("é" * 300 + ".jpeg")
    assert name.endswith(".jpeg") and len(name.encode()) <= MAX_NAME_BYTES
    name.encode("utf-8")  # cut on a character boundary


def test_claim_never_overwrites(tmp_path):
    (tmp_path / "a.txt").write_text("mine")
    first = claim_path(str(tmp_path), "a.txt")
    second = claim_path(str(tmp_path), "a.txt")
    assert os.path.basename(first) == "a (1).txt" and os.path.basename(second) == "a (2).txt"
    assert (tmp_path / "a.txt").read_text() == "mine"
    assert os.path.basename(claim_path(str(tmp_path), "noext")) == "noext"


def test_downloads_folder():
    assert default_downloads({"XDG_DOWNLOAD_DIR": "/x/dl"}) == "/x/dl/kadchat"
    assert default_downloads({}).endswith(os.path.join("Downloads", "kadchat"))


def _settle(clock, cc, delay, rounds=200, acked=1000):
    for _ in range(rounds):
        clock.advance(0.01)
        cc.on_ack(acked, delay, rtt=0.02)


def test_ledbat_grows_while_under_target_and_shrinks_over_it():
    clock = task.Clock()
    cc = Ledbat(clock, mss=1000)
    start = cc.window
    _settle(clock, cc, 0.020)  # the base delay, no queue
    grown = cc.window
    assert grown > start
    _settle(clock, cc, 0.020 + 2 * TARGET)  # queueing twice the target
    assert cc.window < grown
    assert cc.queueing_delay() == pytest.approx(2 * TARGET)


def test_ledbat_holds_near_the_target():
    clock = task.Clock()
    cc = Ledbat(clock, mss=1000)
    _settle(clock, cc, 0.020)
    before = cc.window
    _settle(clock, cc, 0.020 + TARGET)  # exactly on target: no change
    assert cc.window == pytest.approx(before, rel=0.01)  # (the filter still held old samples at first)


def test_ledbat_base_delay_forgets_old_minutes():
    clock = task.Clock()
    cc = Ledbat(clock, mss=1000)
    cc.on_ack(1000, 0.010)
    for _ in range(12):  # the route changed: 50 ms is the new base
        clock.advance(60)
        cc.on_ack(1000, 0.050)
    assert cc.queueing_delay() == pytest.approx(0.0)


def test_ledbat_loss_halves_once_per_round_trip_and_timeout_resets():
    clock = task.Clock()
    cc = Ledbat(clock, mss=1000, initial_packets=64)
    cc.on_ack(1000, 0.01, rtt=0.1)
    window = cc.window
    cc.on_loss()
    assert cc.window == pytest.approx(window / 2)
    cc.on_loss()  # the same round trip: the same congestion event
    assert cc.window == pytest.approx(window / 2)
    clock.advance(0.2)
    cc.on_loss()
    assert cc.window == pytest.approx(window / 4)
    cc.on_timeout()
    assert cc.window == cc.min_window
    for _ in range(100):
        cc.on_loss()
        clock.advance(1)
    assert cc.window == cc.min_window


def test_file_records_round_trip():
    from kadchat.transfer import frames
    t = os.urandom(8)
    records = [
        frames.Offer(t, 123, merkle.CHUNK_SIZE, os.urandom(32), frames.FLAG_RELAY_OK, "café.txt"),
        frames.Answer(t, 3, b"\x01\x02"), frames.Get(t, 32, 7), frames.Leaves(t, 32, (os.urandom(32),) * 3),
        frames.Data(t, 9, 255, 1_700_000_000_000_000, os.urandom(1024)),
        frames.Ack(t, 9, frames.PARTIAL, 42, -17, (1 << 255) | 5), frames.Cancel(t, frames.RELAY_CAP),
        frames.Done(t),
    ]
    for record in records:
        assert frames.decode(frames.encode(record)) == record


def test_malformed_file_records_raise_only_wire_errors():
    import random
    from kadchat.transfer import frames
    from kadchat.wire import FILE_RECORDS, WireError
    rng = random.Random(16)
    for _ in range(20000):
        payload = bytes([rng.choice(FILE_RECORDS)]) + rng.randbytes(rng.choice([0, 1, 8, 12, 14, 20, 53, 61, 300, 1100]))
        try:
            frames.decode(payload)
        except WireError:
            pass
    with pytest.raises(WireError):
        frames.decode(frames.encode(frames.Offer(b"t" * 8, 1, merkle.CHUNK_SIZE, bytes(32), 0, "x"))[:-1] + b"\xff")
