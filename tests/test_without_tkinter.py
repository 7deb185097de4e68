"""A Python without tkinter (Debian/Ubuntu: no python3-tk), or no display: the window client
says so in one line naming the package, and the demo claims no windows. The
entry scripts run as real processes in which `import tkinter` fails."""

import os
import subprocess
import sys

from tests.client_helpers import CHILD_ENV, CLIENT, ROOT, make_identity

# Runs a script as __main__ with tkinter unimportable, as on a system without python3-tk.
WITHOUT_TKINTER = ("import runpy, sys; sys.modules['tkinter'] = None; "
                   "script = sys.argv.pop(1); sys.argv[0] = script; runpy.run_path(script, run_name='__main__')")


def run(script, *args, cwd=ROOT, timeout=60, env=None):
    return subprocess.run([sys.executable, "-c", WITHOUT_TKINTER, str(script), *args], cwd=cwd,
                          env=env or CHILD_ENV, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout)


def test_the_window_client_without_tkinter_is_one_line_naming_python3_tk(tmp_path):
    make_identity(tmp_path, "alice")
    result = run(CLIENT, "--data-dir", str(tmp_path), "--interface", "127.0.0.1")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "error: the window needs tkinter, which is not installed: on Debian/Ubuntu "
        "'sudo apt-get install python3-tk' (or use -N for the console client)"]
    assert "listening on" not in result.stdout  # stopped before it joined anything


def test_the_console_client_needs_no_tkinter(tmp_path):
    make_identity(tmp_path, "alice")
    result = subprocess.run([sys.executable, "-c", WITHOUT_TKINTER, CLIENT, "-N", "--data-dir", str(tmp_path),
                             "--interface", "127.0.0.1"], input="/quit\n", cwd=ROOT, env=CHILD_ENV,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "listening on" in result.stdout


def test_the_demo_with_a_display_but_without_tkinter_says_so_and_opens_no_window(tmp_path):
    env = dict(CHILD_ENV, DISPLAY=":999")  # a display is claimed; tkinter is what is missing
    # Interactive (no --duration): alice reads this process's stdin, empty, and quits at its end.
    result = run(ROOT / "demo.py", cwd=tmp_path, env=env, timeout=100)
    assert result.returncode == 0, result.stderr
    assert "no windows: tkinter is missing (Debian/Ubuntu package python3-tk); you are alice in this terminal " \
           "instead" in result.stdout.splitlines()
    assert "windows open" not in result.stdout
    assert "Traceback" not in result.stderr, result.stderr


def test_the_window_client_without_a_display_is_one_line_and_creates_no_identity(tmp_path):
    env = {k: v for k, v in CHILD_ENV.items() if k != "DISPLAY"}
    result = subprocess.run([sys.executable, CLIENT, "--data-dir", str(tmp_path), "--interface", "127.0.0.1"],
                            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("error: cannot open a window (") and line.endswith("use -N for the console client")
    assert not (tmp_path / "identity.key").exists()
