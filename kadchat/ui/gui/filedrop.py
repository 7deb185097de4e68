"""Files dropped onto a widget from the desktop's file manager (tkinterdnd2: the tkdnd Tk
extension). Without it (not installed, no binary for this platform, a Tk it can't load
into) the window works as before, with the attach button only."""

from __future__ import annotations

import tkinter as tk
from typing import Callable

from twisted.logger import Logger

log = Logger()


def accept_drops(widget: tk.Misc, on_paths: Callable[[list[str]], None]) -> bool:
    """Makes `widget` a drop target for files; False (and nothing changed) if DnD can't load."""
    try:
        from tkinterdnd2 import COPY, DND_FILES, TkinterDnD
        TkinterDnD.require(widget.winfo_toplevel())
        widget.drop_target_register(DND_FILES)
    except (ImportError, RuntimeError, tk.TclError) as e:
        log.info("no drag and drop of files: {e}", e=e)
        return False

    def dropped(event):
        on_paths(dropped_paths(widget, event.data))
        return COPY
    widget.dnd_bind("<<Drop>>", dropped)
    return True


def dropped_paths(widget: tk.Misc, data: str) -> list[str]:
    """tkdnd hands the paths over as a Tcl list ("{/a b/c.png} /d.txt")."""
    return [p for p in widget.tk.splitlist(data) if p]
