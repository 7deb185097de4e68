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
