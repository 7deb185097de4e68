"""The README's first command: the one-machine demo, run headless for a while."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.timeout(120)
def test_demo_users_exchange_messages_both_ways(tmp_path):
    env = dict(os.environ)
    env.pop("DISPLAY", None)
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "demo.py"), "--duration", "20"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=100,
    )
    assert result.returncode == 0, result.stderr
    screen = result.stdout
    assert "bob: Hi alice!" in screen, screen
    assert "(delivered to bob)" in screen, screen
    assert "bob: you said: hello from alice" in screen, screen
    assert "Traceback" not in result.stderr, result.stderr
    # Nothing of the demo keeps running after it exits.
    leftovers = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True)
    assert leftovers.stdout == ""


@pytest.mark.gui
@pytest.mark.timeout(150)
def test_with_a_display_the_demo_claims_two_windows_only_once_both_are_open_and_stops_on_ctrl_c(tmp_path):
    import signal
    import time

    from tests.xvfb import Xvfb, require_tools

    require_tools()
    display = Xvfb(1280, 800)
    env = dict(os.environ, DISPLAY=display.display)
    out = tmp_path / "demo.out"
    try:
        with open(out, "wb") as sink:
            demo = subprocess.Popen([sys.executable, os.path.join(ROOT, "demo.py")], cwd=tmp_path, env=env,
                                    stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        deadline = time.monotonic() + 60
        while "two windows open" not in out.read_text() and time.monotonic() < deadline:
            assert demo.poll() is None, out.read_text()
            time.sleep(0.2)
        assert "two windows open" in out.read_text(), out.read_text()
        for name in ("alice", "bob"):  # the claim is true: both windows are on the screen (mapped soon after)
            search = ["xdotool", "search", "--onlyvisible", "--name", f"^kadchat .+ {name}$"]
            deadline = time.monotonic() + 10
            while not subprocess.run(search, env=env, capture_output=True, text=True, timeout=30).stdout.split():
                assert time.monotonic() < deadline, f"no window for {name}"
                time.sleep(0.2)
        os.killpg(demo.pid, signal.SIGINT)  # Ctrl-C at the terminal the demo was started from
        assert demo.wait(60) == 0
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()
        display.stop()
    assert "Traceback" not in out.read_text() and "GeneratorExit" not in out.read_text(), out.read_text()
    leftovers = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True)
    assert leftovers.stdout == ""
