"""Driving real kadchat processes from tests: the client in console mode (-N)
and the dedicated server, on loopback or inside a `tests.netns` lab.

Data directories are prepared here (identity, contacts.txt) with
the product's own code, so a test can start two clients that already know each
other. `Spawned` reads a child's output lines on a thread and offers bounded
`expect`s (tests.child_process); with `pty_mode=True` the child's stdin/stdout
are a pseudo-terminal, so the client behaves as it does for a person at a
terminal.
"""

import os
import pty
import re
import sqlite3
import subprocess
import sys
import threading
import time
import tty
from pathlib import Path

import pytest

from kadchat.identity import load_or_create
from tests.child_process import ChildProcess

ROOT = Path(__file__).resolve().parents[1]
CLIENT = str(ROOT / "client_node.py")
SERVER = str(ROOT / "dedicated_server.py")
CHILD_ENV = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")

# The console's output shapes (kadchat.ui.console).
LISTENING = r"^listening on (\S+):(\d+);"
CARD_LINE = r"^  (kc1\S+)$"


def received(name, text):
    return rf"^\[\d\d:\d\d:\d\d\] {re.escape(name)}: {re.escape(text)}$"


def texts_from(process, name):
    """The texts of every message from `name` that `process` showed so far, in order."""
    pattern = rf"^\[\d\d:\d\d:\d\d\] {re.escape(name)}: (.*)$"
    return [re.match(pattern, line)[1] for line in process.seen(pattern)]


def presence(name, state):
    return rf"^\* {re.escape(name)} is {state}$"


def state(state_name, name):
    return rf"^\({state_name} to {re.escape(name)}\)$"


def undelivered(name):
    """A message to `name` on its way: sending or sent over a session, queued or stored for dead drops."""
    return rf"^\((?:(?:sending|sent) to|(?:queued|stored) for) {re.escape(name)}\)$"


def chat_both_ways(alice, bob, hello_bob="hello bob", hello_alice="hello alice", timeout=20):
    """alice and bob see each other online, write one message each way, and each
    sees the other's arrive and their own delivered."""
    alice.expect(presence("bob", "connected"), timeout=timeout)
    bob.expect(presence("alice", "connected"), timeout=timeout)
    alice.send_line(f"/msg bob {hello_bob}")
    bob.expect(received("alice", hello_bob), timeout=timeout)
    alice.expect(state("delivered", "bob"), timeout=timeout)
    bob.send_line(f"/msg alice {hello_alice}")
    alice.expect(received("bob", hello_alice), timeout=timeout)
    bob.expect(state("delivered", "alice"), timeout=timeout)


def seconds_until(process, pattern, since, within):
    """Wait for a line matching `pattern` from `process` (a ChildProcess); the seconds since `since`
    (time.monotonic()) it took, which must be at most `within`."""
    return seconds_until_all(process, [pattern], since, within)[0]


def seconds_until_all(process, patterns, since, within):
    """Like seconds_until, for lines matching each of `patterns`, in any order; their seconds."""
    took = {}

    def test(line):
        for pattern in patterns:
            if pattern not in took and re.search(pattern, line):
                took[pattern] = time.monotonic() - since
        return len(took) == len(patterns)

    process.read_until(test, max(0.0, since + within - time.monotonic()), repr(patterns))
    return [took[pattern] for pattern in patterns]


# -- data directories -----------------------------------------------------------

def make_identity(data_dir, name):
    """Create `data_dir` with a new identity; returns its card."""
    return load_or_create(str(data_dir), name).card


def write_contacts(data_dir, contacts):
    """contacts.txt with `{name: card}`."""
    Path(data_dir, "contacts.txt").write_text("".join(f"{card} {name}\n" for name, card in contacts.items()))


def friends(tmp_path, names):
    """Data directories for `names`, each with every other one in contacts.txt.

    Returns {name: (data_dir, card)}."""
    dirs = {name: tmp_path / name for name in names}
    cards = {name: make_identity(d, name) for name, d in dirs.items()}
    for name, d in dirs.items():
        write_contacts(d, {other: card for other, card in cards.items() if other != name})
    return {name: (dirs[name], cards[name]) for name in names}


def history_rows(data_dir):
    """(outgoing, text, state) of every message in the one history database of `data_dir`."""
    [path] = Path(data_dir).glob("history-*.sqlite3")
    db = sqlite3.connect(str(path))
    try:
        return db.execute("SELECT outgoing, text, state FROM messages ORDER BY timestamp, seq").fetchall()
    finally:
        db.close()


def client_argv(data_dir, *flags, bootstrap=None, interface="127.0.0.1", log=True):
    """client_node.py in console mode with its data in `data_dir` (and its log in client.log)."""
    argv = [sys.executable, CLIENT, "-N", "--data-dir", str(data_dir), "--interface", interface, *flags]
    if bootstrap is not None:
        argv += ["-I", bootstrap[0], "-P", str(bootstrap[1])]
    if log:
        argv += ["-l", str(Path(data_dir) / "client.log")]
    return argv


def server_argv(host, port=0, log=None):
    argv = [sys.executable, SERVER, "-p", str(port), "--host", host, "--status-interval", "1"]
    if log is not None:
        argv += ["-l", str(log)]
    return argv


# -- processes on this host --------------------------------------------------------

class Spawned(ChildProcess):
    """A child process on this host (its stderr lines collected too), with bounded waits."""

    def __init__(self, argv, pty_mode=False, cwd=None, name=None, env=None):
        self.argv = argv
        self.name = name or Path(argv[1]).name
        options = dict(cwd=cwd or ROOT, env=dict(CHILD_ENV, **(env or {})), start_new_session=True)
        if pty_mode:
            # A terminal for stdin and stdout, as for a person; stderr apart. A dumb one: the
            # console's lines, not its line editor (tests/test_console_terminal.py reads the editor's screen).
            controller, terminal = pty.openpty()
            tty.setraw(terminal)  # no echo of typed lines, no \r\n translation
            options["env"] = dict(CHILD_ENV, TERM="dumb")
            popen = subprocess.Popen(argv, stdin=terminal, stdout=terminal, stderr=subprocess.PIPE, **options)
            os.close(terminal)
            super().__init__(popen, os.fdopen(controller, "rb", buffering=0),
                             os.fdopen(os.dup(controller), "wb", buffering=0))
        else:
            popen = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, **options)
            super().__init__(popen, popen.stdout, popen.stdin)
        self.stderr_lines = []
        threading.Thread(target=self._pump_stderr, daemon=True).start()

    def _pump_stderr(self):
        for raw in self.popen.stderr:
            self.stderr_lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def wait(self, timeout=15.0):
        """The exit code, waiting at most `timeout` s."""
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"still running after {timeout} s\n{self.describe()}") from None

    def quit(self, timeout=15.0):
        """/quit and the exit code."""
        self.send_line("/quit")
        return self.wait(timeout)

    def describe(self):
        return (f"[{self.name}] {' '.join(self.argv)} (exit {self.popen.poll()})\n"
                f"  output tail: {self.lines[-15:]}\n  stderr tail: {self.stderr_lines[-15:]}")


class Processes:
    """Every process a test started; `stop_all()` ends the ones still running."""

    def __init__(self):
        self.started = []

    def spawn(self, argv, **kwargs):
        process = Spawned(argv, **kwargs)
        self.started.append(process)
        return process

    def server(self, host="127.0.0.1", log=None):
        """A dedicated server on `host`, any free port; returns (process, (host, port))."""
        server = self.spawn(server_argv(host, log=log), name="server")
        found = server.expect(r"^listening on (\S+):(\d+)$")
        return server, (found[1], int(found[2]))

    def client(self, data_dir, *flags, pty_mode=False, bootstrap=None, interface="127.0.0.1", env=None):
        """A console client (`env`: variables added to its environment); returns it once it is listening."""
        client = self.spawn(client_argv(data_dir, *flags, bootstrap=bootstrap, interface=interface),
                            pty_mode=pty_mode, name=Path(data_dir).name, env=env)
        client.expect(LISTENING)
        return client

    def stop_all(self):
        for process in reversed(self.started):
            process.stop()


def wait_for(what, probe, timeout=20.0, interval=0.05):
    """Poll `probe` until it returns something truthy, and return that."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


@pytest.fixture
def procs():
    """A `Processes` whose processes are stopped after the test (import it as a fixture)."""
    started = Processes()
    yield started
    started.stop_all()

