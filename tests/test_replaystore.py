"""kadchat.replaystore: the newest answered initiation per peer, on disk."""

import os
import stat

from kadchat.replaystore import LatestInitiations

PEER, OTHER = b"p" * 32, b"o" * 32


def test_a_restarted_guard_refuses_what_it_answered_and_older(tmp_path):
    path = str(tmp_path / "answered")
    LatestInitiations(path).record(PEER, 5_000_000, now=5.0)
    again = LatestInitiations(path)
    assert not again.is_newer(PEER, 5_000_000) and not again.is_newer(PEER, 4_999_999)
    assert again.is_newer(PEER, 5_000_001) and again.is_newer(OTHER, 0)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_entries_the_time_window_refuses_anyway_are_dropped(tmp_path):
    path = str(tmp_path / "answered")
    latest = LatestInitiations(path, keep_seconds=240.0)
    latest.record(PEER, 0, now=0.0)
    latest.record(OTHER, 300_000_000, now=300.0)
    assert open(path).read().splitlines() == [f"{OTHER.hex()} 300000000"]


def test_an_unreadable_file_is_ignored_rather_than_refusing_everyone(tmp_path):
    path = tmp_path / "answered"
    path.write_text("not hex\n")
    assert LatestInitiations(str(path)).is_newer(PEER, 1)
