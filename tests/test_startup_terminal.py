"""Ctrl-C and Ctrl-D at a real terminal (a pseudo-terminal that is the child's
controlling terminal, as for a person): the first "Choose a username:" prompt,
a running console client, and the demo. Never a traceback; giving up is one
line and a non-zero exit."""

import subprocess
import sys

import pytest

from tests.client_helpers import CHILD_ENV, CLIENT, ROOT, make_identity
from tests.terminal import CTRL_C, CTRL_D, Terminal


@pytest.fixture
def terminals():
    started = []

    # TERM=dumb: the console's line editor would draw its prompt with escape sequences
    # that this terminal does not interpret; its own Ctrl-C and Ctrl-D are
    # tests/test_console_terminal.py's.
    def start(*args, **kwargs):
        started.append(Terminal([sys.executable, *args], env=dict(CHILD_ENV, TERM="dumb"), **kwargs))
        return started[-1]
    yield start
    for terminal in started:
        terminal.close()


def client(terminals, data_dir):
    return terminals(CLIENT, "-N", "--data-dir", str(data_dir), "--interface", "127.0.0.1")


def after_prompt(screen):
    """The lines after the prompt, without the terminal's own echo of Ctrl-C (^C)."""
    lines = screen.split("Choose a username: ", 1)[1].replace("^C", "").splitlines()
    return [line for line in lines if line.strip()]


@pytest.mark.parametrize("key", [CTRL_C, CTRL_D], ids=["ctrl-c", "ctrl-d"])
def test_giving_up_at_the_username_prompt_is_one_line_a_non_zero_exit_and_creates_nothing(tmp_path, terminals, key):
    terminal = client(terminals, tmp_path / "carol")
    terminal.expect(r"Choose a username: ")
    terminal.type(key)
    assert terminal.wait() == 1
    assert "Traceback" not in terminal.screen
    assert after_prompt(terminal.screen) == [
        "error: no username chosen; nothing was created"]
    assert not (tmp_path / "carol" / "identity.key").exists()
    assert not (tmp_path / "carol" / "identity.txt").exists()


def test_an_empty_or_blank_username_asks_again(tmp_path, terminals):
    terminal = client(terminals, tmp_path / "carol")
    answers = [(b"\n", "a name cannot be empty"), (b"   \n", "a name cannot be empty"),
               (b"#hash\n", "a name cannot start with '#'")]
    for asked, (answer, complaint) in enumerate(answers, start=1):
        terminal.expect(rf"(?s)(Choose a username: .*){{{asked}}}")  # asked again each time
        terminal.type(answer)
        said = sum(1 for _, earlier in answers[:asked] if earlier == complaint)
        terminal.expect(rf"(?s)({complaint}; try again.*){{{said}}}")
    terminal.expect(r"(?s)(Choose a username: .*){4}")
    terminal.type(b"carol\n")
    terminal.expect(r"^kadchat: you are carol;")
    terminal.type(b"/quit\n")
    assert terminal.wait() == 0
    assert (tmp_path / "carol" / "identity.txt").read_text().splitlines()[-1].endswith(" carol")


@pytest.mark.parametrize("key", [CTRL_C, CTRL_D], ids=["ctrl-c", "ctrl-d"])
def test_ctrl_c_or_ctrl_d_in_a_running_console_client_ends_it_cleanly(tmp_path, terminals, key):
    make_identity(tmp_path / "dan", "dan")
    terminal = client(terminals, tmp_path / "dan")
    terminal.expect(r"^kadchat: you are dan;")
    terminal.type(key)
    assert terminal.wait() == 0
    assert "Traceback" not in terminal.screen


@pytest.mark.timeout(120)
def test_ctrl_c_in_the_demo_stops_everything_without_a_traceback(tmp_path, terminals):
    env = dict(CHILD_ENV)
    env.pop("DISPLAY", None)
    terminal = Terminal([sys.executable, str(ROOT / "demo.py")], env=env, cwd=str(tmp_path))
    try:
        terminal.expect(r"bob: Hi alice!", timeout=60)  # the swarm, both users and the bot are up
        terminal.type(CTRL_C)
        assert terminal.wait(60) == 0
    finally:
        terminal.close()
    assert "Traceback" not in terminal.screen and "GeneratorExit" not in terminal.screen, terminal.screen
    leftovers = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True)
    assert leftovers.stdout == ""


@pytest.mark.parametrize("after", [1.0, 2.0, 3.0])
def test_ctrl_c_at_any_moment_of_the_demo_start_is_quiet(tmp_path, after):
    """Ctrl-C reaches the whole foreground process group: the demo, its servers and
    clients, whether still importing, starting or running. (Not before 1 s: an
    interrupt while the interpreter itself imports `site`, which a loaded machine
    stretches past 0.2 s, is CPython's fatal error, before any code of ours runs.)"""
    import os
    import signal
    import time

    env = {k: v for k, v in CHILD_ENV.items() if k != "DISPLAY"}
    demo = subprocess.Popen([sys.executable, str(ROOT / "demo.py"), "--console"], cwd=tmp_path, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    time.sleep(after)
    os.killpg(demo.pid, signal.SIGINT)
    screen = demo.communicate(timeout=60)[0].decode()
    assert demo.returncode in (0, 130), screen  # 130: still importing, as shells report an interrupt
    assert "Traceback" not in screen and "Error" not in screen, screen
    leftovers = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True)
    assert leftovers.stdout == ""
