"""The file chooser, in a process of its own: Tk's dialog runs a nested event loop, which
inside the window would stop the Twisted reactor (and with it every session) for as long
as the user browses. The child prints the chosen paths, NUL-separated; the window looks
for its end with `after`."""

from __future__ import annotations

import subprocess
import sys
import tkinter as tk
from typing import Callable

POLL = 100  # ms between looks at the chooser process
CHOOSER = """
import sys, tkinter
from tkinter import filedialog
root = tkinter.Tk()
root.withdraw()
sys.stdout.write("\\0".join(filedialog.askopenfilenames(parent=root, title=sys.argv[1])))
"""


def choose_files(parent: tk.Misc, on_chosen: Callable[[list[str]], None], title: str = "Send files") -> None:
    """Calls `on_chosen(paths)` once the user picked files; nothing if they cancel."""
    process = subprocess.Popen([sys.executable, "-c", CHOOSER, title], stdout=subprocess.PIPE,
                               stdin=subprocess.DEVNULL)
    parent.after(POLL, _check, parent, process, on_chosen)


def _check(parent: tk.Misc, process: subprocess.Popen, on_chosen) -> None:
    if process.poll() is None:
        if parent.winfo_exists():
            parent.after(POLL, _check, parent, process, on_chosen)
        else:  # the tab closed while choosing
            process.terminate()
            process.wait()
        return
    out = process.stdout.read().decode("utf-8", "surrogateescape")
    process.stdout.close()
    paths = [p for p in out.split("\0") if p]
    if process.returncode == 0 and paths and parent.winfo_exists():
        on_chosen(paths)
