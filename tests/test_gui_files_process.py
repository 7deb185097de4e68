"""tests/test_gui_files.py in a pytest process of its own (see the note at its top)."""

import os
import subprocess
import sys

from tests.client_helpers import ROOT


def test_the_window_file_transfer_tests_pass_in_a_process_of_their_own():
    env = dict(os.environ, KADCHAT_GUI_FILES_OWN_PROCESS="1")
    run = subprocess.run([sys.executable, "-m", "pytest", "-o", "addopts=-p no:cacheprovider", "-q",
                          str(ROOT / "tests" / "test_gui_files.py")],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and " skipped" not in run.stdout, run.stdout[-2000:]
