"""File transfer end to end: real client processes (client_node.py -N) and a dedicated
server on loopback, each client with its own data directory (issue 16)."""

import hashlib
import os
import re
import signal
import sqlite3
from pathlib import Path

import pytest

from tests.client_helpers import friends, presence, procs  # noqa: F401 (procs: a fixture)

pytestmark = pytest.mark.timeout(120)

OFFER = r"^\* alice offers (.+) \((.+)\) as #(\d+); /accept \d+$"


def conf(data_dir, downloads, extra=""):
    os.makedirs(data_dir, exist_ok=True)
    (Path(data_dir) / "kadchat.conf").write_text(f"refresh_interval = 1\ndownloads = {downloads}\n{extra}")


def sha(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def random_file(path, size):
    path.write_bytes(os.urandom(size))
    return path


def pair(tmp_path, procs, alice_conf="", bob_conf=""):
    """alice and bob, contacts of each other, connected; returns (alice, bob, bob's downloads)."""
    _, server = procs.server()
    dirs = friends(tmp_path, ["alice", "bob"])
    downloads = tmp_path / "bob-downloads"
    conf(dirs["alice"][0], tmp_path / "alice-downloads", alice_conf)
    conf(dirs["bob"][0], downloads, bob_conf)
    alice = procs.client(dirs["alice"][0], "-r", bootstrap=server)
    bob = procs.client(dirs["bob"][0], "-r", bootstrap=server, interface="127.0.0.2")
    alice.expect(presence("bob", "connected"), timeout=30)
    bob.expect(presence("alice", "connected"), timeout=30)
    dirs["server"] = server
    return alice, bob, downloads, dirs


def received_line(name):
    return rf"^\* received {re.escape(name)} from alice: (.+)$"


def test_a_file_arrives_intact_and_both_sides_say_so(tmp_path, procs):
    alice, bob, downloads, _ = pair(tmp_path, procs)
    source = random_file(tmp_path / "holiday video.bin", 8 * 1024 * 1024 + 123)
    alice.send_line(f"/send bob {source}")
    alice.expect(r"^\* offered holiday video.bin \(8.4 MB\) to bob as #1$")
    found = bob.expect(OFFER, timeout=20)
    assert found[1] == "holiday video.bin"
    bob.send_line(f"/accept {found[3]}")
    path = bob.expect(received_line("holiday video.bin"), timeout=90)[1]
    alice.expect(r"^\* sent holiday video.bin to bob$", timeout=20)
    assert Path(path) == downloads / "holiday video.bin"
    assert sha(path) == sha(source)
    assert not list(downloads.glob("*.kadchat-part"))
    bob.send_line("/files")
    bob.expect(r"^#1 from alice: holiday video.bin, 8.4 MB of 8.4 MB, done$")


def transfer_row(data_dir, outgoing):
    db = sqlite3.connect(str(Path(data_dir) / "transfers.db"))
    try:
        return db.execute("SELECT state, bitmap, sent, size FROM transfers WHERE outgoing = ? ORDER BY id DESC",
                          (int(outgoing),)).fetchone()
    finally:
        db.close()


def chunks_held(data_dir):
    row = transfer_row(data_dir, False)
    return 0 if row is None else sum(bin(b).count("1") for b in row[1])


def test_receiver_killed_half_way_resumes_and_little_is_sent_twice(tmp_path, procs):
    import time
    alice, bob, downloads, dirs = pair(tmp_path, procs)
    size = 16 * 1024 * 1024
    source = random_file(tmp_path / "big.bin", size)
    alice.send_line(f"/send bob {source}")
    bob.send_line(f"/accept {bob.expect(OFFER, timeout=20)[3]}")
    chunks = size // (256 * 1024)
    deadline = time.monotonic() + 60
    while chunks_held(dirs["bob"][0]) < chunks // 2:
        assert time.monotonic() < deadline, bob.describe()
        time.sleep(0.02)
    bob.kill()
    held_at_kill = chunks_held(dirs["bob"][0])
    assert held_at_kill < chunks, "finished before the kill: make the file bigger"
    bob = procs.client(dirs["bob"][0], "-r", bootstrap=dirs["server"], interface="127.0.0.2")
    path = bob.expect(received_line("big.bin"), timeout=90)[1]
    alice.expect(r"^\* sent big.bin to bob$", timeout=20)
    assert sha(path) == sha(source)
    state, _, sent, _ = transfer_row(dirs["alice"][0], True)
    assert state == "done"
    assert sent < 1.3 * size, f"{sent} bytes sent for {size} (killed holding {held_at_kill}/{chunks} chunks)"


def tricky(procs, data_dir, *trick, interface="127.0.0.1", bootstrap):
    from tests.client_helpers import LISTENING, client_argv
    argv = client_argv(data_dir, "-r", bootstrap=bootstrap, interface=interface)
    client = procs.spawn([argv[0], str(Path(__file__).parent / "tricky_sender.py"), *trick, "--", *argv[2:]],
                         name=Path(data_dir).name)
    client.expect(LISTENING)
    return client


def tricky_pair(tmp_path, procs, *trick):
    _, server = procs.server()
    dirs = friends(tmp_path, ["alice", "bob"])
    downloads = tmp_path / "bob-downloads"
    conf(dirs["alice"][0], tmp_path / "alice-downloads")
    conf(dirs["bob"][0], downloads)
    alice = tricky(procs, dirs["alice"][0], *trick, bootstrap=server)
    bob = procs.client(dirs["bob"][0], "-r", bootstrap=server, interface="127.0.0.2")
    alice.expect(presence("bob", "connected"), timeout=30)
    bob.expect(presence("alice", "connected"), timeout=30)
    return alice, bob, downloads


def test_a_corrupted_chunk_is_detected_and_fetched_again(tmp_path, procs):
    alice, bob, downloads = tricky_pair(tmp_path, procs, "--corrupt-chunk", "3")
    source = random_file(tmp_path / "data.bin", 2 * 1024 * 1024)
    alice.send_line(f"/send bob {source}")
    bob.send_line(f"/accept {bob.expect(OFFER, timeout=20)[3]}")
    path = bob.expect(received_line("data.bin"), timeout=60)[1]
    assert sha(path) == sha(source)
    alice.send_line("/files")
    found = alice.expect(r"^#1 to bob: data.bin, 2.1 MB of 2.1 MB, (.+) sent, done$")
    assert found[1] != "2.1 MB"  # chunk 3 went twice
    assert "bad chunk" in Path(tmp_path / "bob" / "client.log").read_text()


HOSTILE = "../../outside\x1b[31m\u202egpj.exe"


def test_a_hostile_file_name_lands_safely_in_the_downloads_folder_without_overwriting(tmp_path, procs):
    alice, bob, downloads = tricky_pair(tmp_path, procs, "--offer-name", HOSTILE)
    downloads.mkdir()
    safe = "outside_[31m_gpj.exe"
    (downloads / safe).write_text("already here")
    source = random_file(tmp_path / "x.bin", 1000)
    alice.send_line(f"/send bob {source}")
    found = bob.expect(OFFER, timeout=20)
    assert found[1] == safe
    bob.send_line(f"/accept {found[3]}")
    path = bob.expect(received_line(safe), timeout=30)[1]
    assert Path(path) == downloads / "outside_[31m_gpj (1).exe"
    assert (downloads / safe).read_text() == "already here"
    assert sha(path) == sha(source)
    assert sorted(p.name for p in tmp_path.iterdir() if "outside" in p.name) == []
    assert not [line for line in bob.lines if "\x1b" in line or "\u202e" in line]


def test_either_side_cancels_and_the_partial_file_goes(tmp_path, procs):
    alice, bob, downloads, _ = pair(tmp_path, procs)
    source = random_file(tmp_path / "a.bin", 300_000)
    alice.send_line(f"/send bob {source}")
    offer = bob.expect(OFFER, timeout=20)[3]
    alice.send_line("/cancel 1")
    alice.expect(r"^\* #1 a.bin cancelled: cancelled here$")
    bob.expect(rf"^\* #{offer} a.bin cancelled: cancelled \(by them\)$", timeout=20)
    bob.send_line(f"/accept {offer}")
    bob.expect(rf"^error: #{offer} is not a file offered to you$")
    alice.send_line(f"/send bob {source}")
    second = bob.expect(OFFER, timeout=20)[3]
    bob.send_line(f"/cancel {second}")
    alice.expect(r"^\* #2 a.bin cancelled: cancelled \(by them\)$", timeout=20)
    assert not downloads.exists() or not list(downloads.iterdir())


def test_bad_input_gets_one_clear_line(tmp_path, procs):
    alice, bob, downloads, _ = pair(tmp_path, procs)
    alice.send_line(f"/send bob {tmp_path / 'nothing-here'}")
    alice.expect(r"^error: cannot read .*nothing-here: No such file or directory$")
    alice.send_line("/send nobody /etc/hostname")
    alice.expect(r"^error: no contact named 'nobody'$")
    alice.send_line("/cancel 99")
    alice.expect(r"^error: no file transfer #99$")


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_50_mb_arrive_intact(tmp_path, procs):
    alice, bob, downloads, _ = pair(tmp_path, procs)
    source = random_file(tmp_path / "fifty.bin", 50 * 1000 * 1000)
    alice.send_line(f"/send bob {source}")
    bob.send_line(f"/accept {bob.expect(OFFER, timeout=20)[3]}")
    path = bob.expect(received_line("fifty.bin"), timeout=360)[1]
    assert sha(path) == sha(source)
    alice.expect(r"^\* sent fifty.bin to bob$", timeout=20)
    for process in (alice, bob):
        assert process.quit(timeout=20) == 0
        assert not [line for line in process.stderr_lines if "Traceback" in line], process.describe()
