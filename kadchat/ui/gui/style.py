"""Look of the window: the Sun Valley ttk theme (sv-ttk), light or dark, fonts,
the palette the plain Tk widgets use, presence dots and colour emoji."""

from __future__ import annotations

import re
import tkinter as tk
import tkinter.font as tkfont
from dataclasses import dataclass
from tkinter import ttk
from typing import Callable

import sv_ttk

from kadchat.model import ContactPresence

EMOJI_FONTS = ("Noto Color Emoji", "Twemoji", "Apple Color Emoji", "Segoe UI Emoji")
# Runs of pictographs (with their joiners and variation selectors) to draw in
# the colour emoji font: Tk's own font fallback picks a monochrome glyph first.
EMOJI = re.compile("[\U0001F000-\U0001FAFF\u2600-\u27BF\u2B05-\u2B07\u2B1B\u2B1C\u2B50\u2B55"
                   "\u200D\uFE0F\U000E0020-\U000E007F]+")  # flags' letters are in the first range


@dataclass(frozen=True)
class Palette:
    background: str  # the theme's own window colour
    paper: str  # the conversation's background
    text: str
    muted: str
    accent: str  # own name, links, badges
    error: str
    them: str  # the other person's name
    bubble_me: str
    bubble_them: str
    banner: str  # "can't reach the network"
    banner_text: str


PALETTES = {
    "light": Palette(background="#fafafa", paper="#ffffff", text="#1c1c1c", muted="#6b6f76",
                     accent="#005fb8", error="#b00020", them="#1b7a3a", bubble_me="#dcebfc",
                     bubble_them="#f0f1f3", banner="#fff4ce", banner_text="#5c4400"),
    "dark": Palette(background="#1c1c1c", paper="#202020", text="#e8e8e8", muted="#a0a4aa",
                    accent="#57a9f5", error="#ff7a85", them="#6cd08f", bubble_me="#1e3a5c",
                    bubble_them="#2e2f31", banner="#433519", banner_text="#ffe3a3"),
}
# Filled dots for who hears us now (connected, away) or not (offline); a ring for
# "in the network": findable, but no session yet.
PRESENCE_DOTS = {
    ContactPresence.CONNECTED: ("#2ea44f", False),
    ContactPresence.AWAY: ("#e3a008", False),
    ContactPresence.SEEN: ("#4f9fd8", True),
    ContactPresence.OFFLINE: ("#8a8e94", False),
}


class Look:
    """Theme, fonts and images shared by the widgets; images must outlive them."""

    def __init__(self, root: tk.Misc, mode: str = "light"):
        self._root = root
        self._painters: list[tuple[tk.Misc, Callable[[], None]]] = []
        base = tkfont.nametofont("TkDefaultFont")
        base.configure(size=10)
        self.font = base
        self.bold = _variant(base, weight="bold")
        self.small = _variant(base, size=8)
        self.title = _variant(base, size=13, weight="bold")
        self.heading = _variant(base, size=16, weight="bold")
        families = set(tkfont.families(root))
        self.emoji_family = next((f for f in EMOJI_FONTS if f in families), None)
        self.emoji = tkfont.Font(root, family=self.emoji_family or base.cget("family"), size=10)
        line = base.metrics("linespace")
        self.dots = {p: _dot(root, colour, size=line // 2 + 4, hollow=hollow)
                     for p, (colour, hollow) in PRESENCE_DOTS.items()}
        self.set_mode(mode)

    def set_mode(self, mode: str) -> None:
        """Light or dark, for the theme and for every widget that asked to be `painted`."""
        self.mode = mode
        self.colours = colours = PALETTES[mode]
        sv_ttk.set_theme(mode, self._root)
        for name in ("TkTextFont", "SunValleyBodyFont", "SunValleyCaptionFont"):
            if name in tkfont.names(self._root):
                tkfont.nametofont(name).configure(family=self.font.cget("family"), size=10)
        style = ttk.Style(self._root)  # styles belong to a theme: set again after each switch
        self._root.configure(background=colours.background)
        style.configure("Treeview", rowheight=2 * self.font.metrics("linespace") + 14)
        style.configure("Title.TLabel", font=self.title)
        style.configure("Heading.TLabel", font=self.heading)
        style.configure("Muted.TLabel", foreground=colours.muted)
        style.configure("Error.TLabel", foreground=colours.error)
        style.configure("Status.TLabel", foreground=colours.muted, padding=(10, 3))
        style.configure("Banner.TFrame", background=colours.banner)
        style.configure("Banner.TLabel", background=colours.banner, foreground=colours.banner_text)
        for side, bubble in (("Me", colours.bubble_me), ("Them", colours.bubble_them)):  # file transfer cards
            style.configure(f"Card{side}.TFrame", background=bubble)
            style.configure(f"Card{side}.TLabel", background=bubble, foreground=colours.text)
            style.configure(f"Card{side}Muted.TLabel", background=bubble, foreground=colours.muted)
        alive = []
        for widget, paint in self._painters:
            if widget.winfo_exists():
                paint()
                alive.append((widget, paint))
        self._painters = alive

    def painted(self, widget: tk.Misc, paint: Callable[[], None]) -> None:
        """Call `paint` (which sets the widget's colours from `colours`) now and after each switch."""
        paint()
        self._painters.append((widget, paint))

    def text_widget_options(self) -> dict:
        """Colours for plain tk.Text boxes, which the ttk theme does not reach."""
        c = self.colours
        return dict(background=c.paper, foreground=c.text, insertbackground=c.text,
                    selectbackground=c.accent, selectforeground="#ffffff", font=self.font,
                    highlightthickness=1, highlightbackground=c.muted, highlightcolor=c.accent,
                    relief="flat", borderwidth=0)

    def runs(self, text: str, *tags: str) -> list:
        """`text` as Text.insert's (chunk, tags) pairs: emoji in the colour font."""
        if self.emoji_family is None:
            return [text, tags]
        pieces, at = [], 0
        for match in EMOJI.finditer(text):
            pieces += [text[at:match.start()], tags, match.group(), (*tags, "emoji")]
            at = match.end()
        return pieces + [text[at:], tags]


def _variant(font: tkfont.Font, **changes) -> tkfont.Font:
    copy = font.copy()
    copy.configure(**changes)
    return copy


def _dot(root: tk.Misc, colour: str, size: int, hollow: bool) -> tk.PhotoImage:
    """A filled circle (or a ring) on a transparent square, for presence."""
    image = tk.PhotoImage(master=root, width=size + 6, height=size)
    r = size / 2
    inner = r - max(2, size / 5) if hollow else 0  # a ring two pixels wide or more
    for y in range(size):
        for x in range(size):
            if inner * inner <= (x + 0.5 - r) ** 2 + (y + 0.5 - r) ** 2 <= r * r:
                image.put(colour, (x, y))
    return image
