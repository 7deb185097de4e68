"""Look of the window: ttk "clam" theme, fonts, colours, presence dots."""

from __future__ import annotations

import tkinter as tk
import tkinter.font as tkfont
from tkinter import ttk

from kadchat.model import ContactPresence

BACKGROUND = "#eceae6"
PAPER = "#ffffff"
MUTED = "#6b6f76"
ERROR = "#b00020"
ME = "#1f5fbf"
THEM = "#1b7a3a"
# Filled dots for who hears us now (connected, away) or not (offline); a ring for
# "in the network": findable, but no session yet.
PRESENCE_DOTS = {
    ContactPresence.CONNECTED: ("#2ea44f", False),
    ContactPresence.AWAY: ("#e3a008", False),
    ContactPresence.SEEN: ("#4f7fa8", True),
    ContactPresence.OFFLINE: ("#a0a4aa", False),
}


class Look:
    """Fonts and images shared by the widgets; images must outlive them."""

    def __init__(self, root: tk.Misc):
        style = ttk.Style(root)
        style.theme_use("clam")
        base = tkfont.nametofont("TkDefaultFont")
        base.configure(size=10)
        tkfont.nametofont("TkTextFont").configure(size=10)
        self.font = base
        self.bold = base.copy()
        self.bold.configure(weight="bold")
        self.small = base.copy()
        self.small.configure(size=9)
        self.title = base.copy()
        self.title.configure(size=12, weight="bold")
        line = base.metrics("linespace")

        root.configure(background=BACKGROUND)
        style.configure(".", background=BACKGROUND)
        style.configure("Treeview", rowheight=line + 10, background=PAPER,
                        fieldbackground=PAPER, borderwidth=0)
        style.configure("Treeview.Heading", padding=(6, 4))
        style.configure("TNotebook.Tab", padding=(12, 4))
        style.configure("TButton", padding=(10, 3))
        style.configure("Title.TLabel", font=self.title)
        style.configure("Muted.TLabel", foreground=MUTED)
        style.configure("Error.TLabel", foreground=ERROR)
        style.configure("Status.TLabel", foreground=MUTED, padding=(10, 3))
        style.configure("Placeholder.TLabel", foreground=MUTED, background=PAPER)
        style.configure("Paper.TFrame", background=PAPER)

        self.dots = {p: _dot(root, colour, size=line // 2 + 2, hollow=hollow)
                     for p, (colour, hollow) in PRESENCE_DOTS.items()}


def _dot(root: tk.Misc, colour: str, size: int, hollow: bool) -> tk.PhotoImage:
    """A filled circle (or a ring) on a transparent square, for presence."""
    image = tk.PhotoImage(master=root, width=size + 4, height=size)
    r = size / 2
    inner = r - max(2, size / 5) if hollow else 0  # a ring two pixels wide or more
    for y in range(size):
        for x in range(size):
            if inner * inner <= (x + 0.5 - r) ** 2 + (y + 0.5 - r) ** 2 <= r * r:
                image.put(colour, (x, y))
    return image
