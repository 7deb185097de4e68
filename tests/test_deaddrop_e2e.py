"""Offline delivery end to end: real client and server processes on loopback.

a sends five messages to b while b is offline, sees them stored in the network
and goes (a clean quit, or SIGKILL right after "stored"); b starts later and
shows all five once, in order, with a's send times; a, back while b is gone
again, shows them delivered: the receipts came through the dead drops alone.
"""

import sqlite3
from pathlib import Path

import pytest

from tests.client_helpers import Processes, friends, received, texts_from

pytestmark = pytest.mark.timeout(200)
TEXTS = [f"while you were out {n}" for n in range(5)]


@pytest.fixture
def procs():
    started = Processes()
    yield started
    started.stop_all()


def sent_times(data_dir, outgoing):
    [path] = Path(data_dir).glob("history-*.sqlite3")
    db = sqlite3.connect(str(path))
    try:
        return db.execute("SELECT text, timestamp FROM messages WHERE outgoing = ? ORDER BY seq",
                          (outgoing,)).fetchall()
    finally:
        db.close()


def wait_for_lines(process, pattern, count, timeout=40):
    while len(process.seen(pattern)) < count:
        process.expect(pattern, timeout=timeout)


def for_b(state):
    return rf"^\({state} (for|to) b\)$"


@pytest.mark.parametrize("leaving", ["quit", "killed"])
def test_messages_reach_b_after_a_has_gone_and_a_sees_them_delivered_later(tmp_path, procs, leaving):
    _, server = procs.server()
    people = friends(tmp_path, ["a", "b"])
    a_dir, b_dir = people["a"][0], people["b"][0]
    a = procs.client(a_dir, "-r", bootstrap=server)
    a.expect(r"^kadchat: you are a;")
    for text in TEXTS:
        a.send_line(f"/msg b {text}")
    wait_for_lines(a, for_b("stored"), len(TEXTS))
    assert len(a.seen(for_b("queued"))) == len(TEXTS)
    if leaving == "quit":
        assert a.quit() == 0
    else:
        a.kill()  # at once after the fifth "stored": no goodbye, nothing flushed

    b = procs.client(b_dir, "-r", bootstrap=server, interface="127.0.0.2")
    b.expect(received("a", TEXTS[-1]), timeout=120)  # a first start reads 50 hours, 2 gets each, 2 lookups/s
    assert texts_from(b, "a") == TEXTS  # all five, once, in order
    theirs, ours = sent_times(a_dir, 1), sent_times(b_dir, 0)  # a's own send times (to the microsecond)
    assert [t for t, _ in ours] == TEXTS
    assert [w for _, w in ours] == pytest.approx([w for _, w in theirs], abs=2e-6)
    assert b.quit() == 0  # b's receipts are in the network before it goes

    a = procs.client(a_dir, "-r", bootstrap=server)
    wait_for_lines(a, for_b("delivered"), len(TEXTS))
    assert a.quit() == 0
    assert [state for _, state in
            sqlite3.connect(str(next(Path(a_dir).glob("history-*.sqlite3")))).execute(
                "SELECT text, state FROM messages ORDER BY seq")] == ["delivered"] * 5
    assert not [line for p in procs.started for line in p.stderr_lines if "Traceback" in line]
