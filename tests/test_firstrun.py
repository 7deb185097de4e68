"""The first-run dialog (kadchat.ui.gui.firstrun): the window client started as
from a launcher (no terminal: its own session, stdin /dev/null) under Xvfb, with
no identity and no --name. Real keystrokes (xdotool) into the real client."""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kadchat.errors import UserError
from tests.client_helpers import CHILD_ENV, CLIENT, SERVER, wait_for
from tests.xvfb import Xvfb, require_tools, screenshot

pytestmark = pytest.mark.gui
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
DIALOG = "^Welcome to kadchat$"


def test_the_answers_are_checked_as_the_flags_are():
    from kadchat.ui.gui.firstrun import FirstRun, read_answers

    assert read_answers("  Ben Big ", "") == FirstRun("Ben Big", None)
    assert read_answers("ben", " boot.example.org:6881 ") == FirstRun("ben", ("boot.example.org", 6881))
    for name, bootstrap, complaint in [("", "", "empty"), ("#x", "", "'#'"), ("ben", "example.org", "HOST:PORT"),
                                       ("ben", "example.org:0", "HOST:PORT"), ("ben", "bad host!:80", "bad host")]:
        with pytest.raises(UserError, match=complaint):
            read_answers(name, bootstrap)


class Launched:
    """client_node.py as a desktop launcher starts it: no terminal at all."""

    def __init__(self, display, data_dir, tmp_path):
        self.err = tmp_path / "client.err"
        with open(tmp_path / "client.out", "wb") as out, open(self.err, "wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, CLIENT, "--data-dir", str(data_dir), "--interface", "127.0.0.1",
                 "-l", str(tmp_path / "client.log")],
                stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True,
                env=dict(CHILD_ENV, DISPLAY=display))

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@pytest.fixture
def display():
    require_tools()
    server = Xvfb(800, 600)
    yield server.display
    server.stop()


def xdotool(display, *args):
    return subprocess.run(["xdotool", *map(str, args)], capture_output=True, text=True, timeout=30,
                          env=dict(os.environ, DISPLAY=display))


def window(display, title, client):
    def probe():
        assert client.process.poll() is None, f"the client exited: {client.err.read_text()}"
        found = xdotool(display, "search", "--onlyvisible", "--name", title)
        return found.stdout.split()[0] if found.returncode == 0 and found.stdout.split() else None
    return wait_for(f"a window named {title!r}", probe)


def type_into(display, window_id, *keys):
    """Focus the window (there is no window manager), then each key: text, or ("key", NAME)."""
    xdotool(display, "windowfocus", "--sync", window_id)
    for key in keys:
        if isinstance(key, tuple):
            xdotool(display, "key", "--window", window_id, key[1])
        else:
            xdotool(display, "type", "--delay", 10, key)
        time.sleep(0.2)


@pytest.fixture
def server(tmp_path):
    with open(tmp_path / "server.out", "wb") as out:
        process = subprocess.Popen([sys.executable, SERVER, "-p", "0", "--host", "127.0.0.1",
                                    "-l", str(tmp_path / "server.log")],
                                   stdout=out, stderr=subprocess.DEVNULL, env=CHILD_ENV, start_new_session=True)
    port = wait_for("the server", lambda: re.search(r"listening on 127\.0\.0\.1:(\d+)",
                                                   (tmp_path / "server.out").read_text()))[1]
    yield int(port)
    process.terminate()
    process.wait(15)


def test_the_first_run_dialog_makes_the_identity_without_a_terminal(display, tmp_path, server):
    data_dir = tmp_path / "carol"
    client = Launched(display, data_dir, tmp_path)
    try:
        dialog = window(display, DIALOG, client)
        type_into(display, dialog, ("key", "Return"))  # no name yet: refused in the dialog, which stays
        time.sleep(0.5)
        assert client.process.poll() is None and not (data_dir / "identity.txt").exists()
        type_into(display, dialog, "Carol C", ("key", "Tab"), f"127.0.0.1:{server}")
        screenshot(display, dialog, ARTIFACTS / "gui-first-run.png")
        type_into(display, dialog, ("key", "Return"))
        wait_for("identity.txt", lambda: (data_dir / "identity.txt").exists())
        assert (data_dir / "identity.txt").read_text().splitlines()[-1].endswith(" Carol C")
        assert (data_dir / "identity.key").exists()
        window(display, "^kadchat .+ Carol C$", client)  # then the chat window
        # The node given in the dialog answered: the next start needs nothing.
        wait_for("bootstrap.txt", lambda: f"127.0.0.1 {server}" in
                 ((data_dir / "bootstrap.txt").read_text() if (data_dir / "bootstrap.txt").exists() else ""))
    finally:
        code = client.stop()
    assert code == 0, client.err.read_text()
    assert "Traceback" not in client.err.read_text()


def test_closing_the_first_run_dialog_is_one_line_a_non_zero_exit_and_creates_no_identity(display, tmp_path):
    data_dir = tmp_path / "dan"
    client = Launched(display, data_dir, tmp_path)
    try:
        dialog = window(display, DIALOG, client)
        type_into(display, dialog, ("key", "Escape"))
        wait_for("the client to exit", lambda: client.process.poll() is not None)
    finally:
        client.stop()
    assert client.process.returncode == 1
    assert client.err.read_text().splitlines() == [
        "error: no username chosen in the first-run dialog; nothing was created"]
    assert not (data_dir / "identity.key").exists() and not (data_dir / "identity.txt").exists()


def test_ctrl_c_while_the_first_run_dialog_is_open_is_one_line_and_creates_no_identity(display, tmp_path):
    import signal

    data_dir = tmp_path / "erin"
    client = Launched(display, data_dir, tmp_path)
    try:
        window(display, DIALOG, client)
        os.killpg(client.process.pid, signal.SIGINT)
        wait_for("the client to exit", lambda: client.process.poll() is not None)
    finally:
        client.stop()
    assert client.process.returncode == 1
    assert client.err.read_text().splitlines() == ["error: stopped before a username was chosen; nothing was created"]
    assert not (data_dir / "identity.key").exists()
