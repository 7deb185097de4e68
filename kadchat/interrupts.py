"""Ctrl-C while an entry script is still starting (importing takes a second or
two): a quiet exit with status 130, not a traceback from whatever was loading.

Importing this module installs that handler, so each entry script imports it
before anything else; `hand_over()`, called just before `task.react`, puts
Python's default handler back, because the reactor installs its own SIGINT
handler (stop, saying goodbye first) only where the default one is in place.
"""

import signal
import sys

INTERRUPTED = 130  # 128 + SIGINT, as shells report it


def _quiet_exit(signum, frame):
    sys.exit(INTERRUPTED)


def hand_over():
    signal.signal(signal.SIGINT, signal.default_int_handler)


signal.signal(signal.SIGINT, _quiet_exit)
