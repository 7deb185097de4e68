"""The console at a terminal: real client processes on a pseudo-terminal, their screen read
through a terminal emulator (tests.console_screen), typed at key by key."""

import os
import re
import signal
import sys
import termios

import pytest

from tests.client_helpers import (ROOT, client_argv, friends, make_identity, presence, procs,  # noqa: F401 (fixture)
                                  received, write_contacts)
from tests.child_process import signal_group
from tests.console_double_child import WARNING
from tests.console_screen import ScreenClient

STAMP = r"\[\d\d:\d\d:\d\d\]"
DOUBLE_CHILD = ROOT / "tests" / "console_double_child.py"  # the console on the UI test double


@pytest.fixture
def screens():
    """Start ScreenClients with `screens(argv)`; every one is stopped after the test."""
    started = []

    def start(argv, **kwargs):
        client = ScreenClient(argv, **kwargs)
        started.append(client)
        return client

    yield start
    for client in started:
        client.stop()


def matching(pattern):
    return lambda line: re.fullmatch(pattern, line) is not None


def stop_together(*processes):
    """SIGTERM to all at once: each says goodbye to the swarm (seconds), in parallel; the fixtures wait."""
    for process in processes:
        signal_group(process.popen, signal.SIGTERM)


def no_traceback(client):
    assert not [line for line in client.stderr_lines if "Traceback" in line], client.describe()


def test_line_editing_input_history_tab_completion_and_a_name_with_spaces(tmp_path, screens):
    dirs = friends(tmp_path, ["alice", "Ben Big"])
    alice = screens(client_argv(dirs["alice"][0]))
    alice.wait_line(matching("kadchat: you are alice; .*"))
    alice.type("/open Bn Bg")
    alice.press("left")
    alice.type("i")
    alice.press("left", "left", "left", "left")
    alice.type("e")
    alice.wait_for(lambda: alice.cursor_line() == "> /open Ben Big", what="the edited line")
    alice.press("enter")
    alice.wait_line("* talking to Ben Big: lines not starting with / go there")
    alice.wait_for(lambda: alice.cursor_line() == "Ben Big>", what="the conversation's prompt")

    alice.press("up")  # input history
    alice.wait_for(lambda: alice.cursor_line() == "Ben Big> /open Ben Big", what="the line recalled")
    alice.press("home")
    alice.type("x")
    alice.press("end", "backspace", "backspace")
    alice.wait_for(lambda: alice.cursor_line() == "Ben Big> x/open Ben B", what="the line edited again")
    for _ in range(len("x/open Ben B")):
        alice.press("backspace")
    alice.enter("hello while you are away")
    alice.wait_line(matching(f"{STAMP} you to Ben Big: hello while you are away"))
    alice.wait_line(matching(r"\((sending|queued|failed) (to|for) Ben Big\)"))

    alice.type("/hi")
    alice.press("tab")  # completes the command, then the name
    alice.wait_for(lambda: alice.cursor_line() == "Ben Big> /history", what="the completed command")
    alice.type("B")
    alice.press("tab")
    alice.wait_for(lambda: alice.cursor_line() == "Ben Big> /history Ben Big", what="the completed line")
    alice.enter(" 1")
    alice.wait_line(matching(r"\[\d{4}-\d\d-\d\d \d\d:\d\d\] you: hello while you are away \(\w+\)"))
    no_traceback(alice)


def test_quit_with_an_undelivered_message_warns_then_ctrl_c_leaves_and_it_stays_queued(tmp_path, screens):
    dirs = friends(tmp_path, ["alice", "Ben Big"])
    alice = screens(client_argv(dirs["alice"][0]))
    alice.wait_line(matching("kadchat: you are alice; .*"))
    alice.enter("/msg Ben still there?")
    alice.wait_line(matching(f"{STAMP} you to Ben Big: still there\\?"))
    alice.wait_line("(queued for Ben Big)")  # Ben is offline: queued, not "sent"
    alice.enter("/quit")
    alice.wait_line("* 1 message not delivered yet (to Ben Big): it stays queued and goes out when kadchat runs "
                    "again; /quit again leaves")
    assert alice.popen.poll() is None
    alice.press("ctrl-c")
    assert alice.wait() == 0
    assert not [line for line in alice.lines() if line.startswith("(sent to")]
    no_traceback(alice)

    again = screens(client_argv(dirs["alice"][0]))  # the message stayed, and shows in the history
    again.enter("/open Ben Big")
    again.wait_line("-- the last message with Ben Big --")
    again.wait_line(matching(r"\[\d{4}-\d\d-\d\d \d\d:\d\d\] you: still there\? \(queued\)"))


def test_ctrl_d_with_nothing_undelivered_leaves_at_once_and_gives_the_terminal_back(tmp_path, screens):
    dirs = friends(tmp_path, ["alice", "bob"])
    alice = screens(client_argv(dirs["alice"][0]))
    before = alice.terminal_modes()
    alice.wait_line(matching("kadchat: you are alice; .*"))
    alice.wait_for(lambda: not alice.terminal_modes()[3] & termios.ICANON, what="the editor's raw mode")
    alice.press("ctrl-d")
    assert alice.wait() == 0
    assert alice.terminal_modes() == before
    no_traceback(alice)


def test_interrupted_from_outside_it_leaves_cleanly_and_gives_the_terminal_back(tmp_path, screens):
    dirs = friends(tmp_path, ["alice", "bob"])
    alice = screens(client_argv(dirs["alice"][0]))
    before = alice.terminal_modes()
    alice.wait_line(matching("kadchat: you are alice; .*"))
    alice.type("half a line")
    alice.wait_for(lambda: not alice.terminal_modes()[3] & termios.ICANON, what="the editor's raw mode")
    os.kill(alice.popen.pid, signal.SIGINT)
    assert alice.wait() == 0
    assert alice.terminal_modes() == before
    no_traceback(alice)


def test_chat_after_open_and_an_incoming_message_while_typing(tmp_path, procs, screens):  # noqa: F811
    _, server = procs.server()
    dirs = friends(tmp_path, ["alice", "Ben Big"])
    alice = screens(client_argv(dirs["alice"][0], "-r", bootstrap=server))
    ben = procs.client(dirs["Ben Big"][0], "-r", bootstrap=server, interface="127.0.0.2")
    alice.wait_line("* Ben Big is connected")
    ben.expect(presence("alice", "connected"), timeout=20)

    alice.enter("/open Ben")
    alice.enter("hello ben")
    ben.expect(received("alice", "hello ben"), timeout=20)
    alice.wait_line("(delivered to Ben Big)")

    alice.type("half a li")
    alice.wait_for(lambda: alice.cursor_line() == "Ben Big> half a li", what="the half-typed line")
    ben.send_line("/msg alice interrupting you")
    alice.wait_line(matching(f"{STAMP} Ben Big: interrupting you"))
    # Redrawn below the message, whole (the redraw follows the printed line, so wait for it).
    alice.wait_for(lambda: alice.cursor_line() == "Ben Big> half a li", timeout=5, what="the half-typed line redrawn")
    alice.enter("ne, done")
    ben.expect(received("alice", "half a line, done"), timeout=20)
    shown = alice.lines()
    message = next(i for i, line in enumerate(shown) if line.endswith("Ben Big: interrupting you"))
    assert re.fullmatch(f"{STAMP} Ben Big: interrupting you", shown[message])  # nothing spliced in
    no_traceback(alice)
    stop_together(alice, ben)


def test_contact_requests_arrive_while_typing_and_are_accepted_ignored_or_blocked(screens):
    """Against the UI contract (tests.backend_double): requests arriving on cue, while typing."""
    console = screens([sys.executable, str(DOUBLE_CHILD)])
    console.wait_line("* request from dave: we met at the conference")  # waiting at start
    console.type("/accept da")
    console.wait_for(lambda: console.cursor_line() == "> /accept da", what="the half-typed line")
    console.popen.send_signal(signal.SIGUSR1)
    console.wait_line("* request from Eve Ng: hello from the train")
    console.wait_for(lambda: console.cursor_line() == "> /accept da", timeout=5, what="the half-typed line redrawn")
    console.enter("ve")
    console.wait_line("added dave")
    console.popen.send_signal(signal.SIGUSR1)
    console.wait_line("* request from mallory")
    console.enter("/requests")
    console.wait_line(matching(r"Eve Ng: hello from the train \(\d{4}-\d\d-\d\d \d\d:\d\d\)"))
    console.enter("/ignore Eve Ng")
    console.wait_line("ignored the request from Eve Ng")
    console.enter("/block mal")
    console.wait_line("blocked mallory")
    console.enter("/requests")
    console.wait_line("no contact requests")
    console.enter("/contacts")
    console.wait_line("dave: offline")
    console.enter("/quit")
    assert console.wait() == 0
    no_traceback(console)


def test_stderr_on_the_same_terminal_does_not_splice_into_the_typed_line(screens):
    console = screens([sys.executable, str(DOUBLE_CHILD)], stderr_too=True)
    console.wait_line("* request from dave: we met at the conference")
    console.type("typing along")
    console.wait_for(lambda: console.cursor_line() == "> typing along", what="the typed line")
    console.popen.send_signal(signal.SIGUSR2)  # a log warning, on stderr
    console.wait_line(WARNING)
    console.wait_for(lambda: console.cursor_line() == "> typing along", timeout=5, what="the typed line redrawn")
    console.press("ctrl-c")
    assert console.wait() == 0


def test_contact_requests_from_real_clients_accepted_ignored_and_blocked(tmp_path, procs, screens):  # noqa: F811
    _, server = procs.server()
    cards = {name: make_identity(tmp_path / name, name) for name in ("alice", "bob", "carol", "mallory")}
    alice = screens(client_argv(tmp_path / "alice", "-r", bootstrap=server))
    alice.wait_line(matching("kadchat: you are alice; .*"))
    others = {}
    for n, name in enumerate(("bob", "carol", "mallory"), start=2):
        write_contacts(tmp_path / name, {"alice": cards["alice"]})  # they have her card; she has none
        others[name] = procs.client(tmp_path / name, "-r", bootstrap=server, interface=f"127.0.0.{n}")
    for name in others:
        alice.wait_line(f"* request from {name}", timeout=30)
    alice.enter("/accept bob")
    alice.wait_line("added bob")
    alice.wait_line("* bob is connected", timeout=30)
    alice.enter("/ignore carol")
    alice.wait_line("ignored the request from carol")
    alice.enter("/block mallory")
    alice.wait_line("blocked mallory")
    alice.enter("/requests")
    alice.wait_line("no contact requests")
    alice.enter("/open bob")
    alice.enter("welcome")
    others["bob"].expect(received("alice", "welcome"), timeout=20)
    no_traceback(alice)
    stop_together(alice, *others.values())
