"""A file transfer as a card in the conversation: name, size, progress, the actions.

    offered, incoming:  Accept / Decline        offered, outgoing: Cancel (waiting)
    active:             progress bar, rate, time left; Cancel
    done:               Open / Show in folder, and a thumbnail for an image
    cancelled:          the reason
"""

from __future__ import annotations

import os
import subprocess
import tkinter as tk
from collections import deque
from tkinter import ttk
from typing import Callable

from kadchat.errors import UserError
from kadchat.model import ChatBackend, Transfer
from kadchat.transfer.sizes import human_size
from kadchat.ui.gui.filechooser import choose_files
from kadchat.ui.gui.style import Look
from kadchat.ui.gui.thumbnails import Thumbnailer, looks_like_image
from kadchat.ui.uitext import one_line

RATE_WINDOW = 5.0  # seconds of progress the rate is averaged over
NAME_WIDTH = 36  # characters of the file name shown; the rest elided


def xdg_open(path: str) -> None:
    """The desktop's program for the file (or the file manager, for a folder)."""
    try:
        subprocess.Popen(["xdg-open", path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    except OSError:  # no xdg-utils: nothing to open it with
        pass


class RateMeter:
    """Bytes per second over the last RATE_WINDOW seconds, and the time left at that rate."""

    def __init__(self, now: Callable[[], float]):
        self._now = now
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, done: int) -> None:
        at = self._now()
        self._samples.append((at, done))
        while len(self._samples) > 2 and at - self._samples[0][0] > RATE_WINDOW:
            self._samples.popleft()

    def rate(self) -> float | None:
        if len(self._samples) < 2:
            return None
        (t0, d0), (t1, d1) = self._samples[0], self._samples[-1]
        return (d1 - d0) / (t1 - t0) if t1 > t0 else None

    def text(self, done: int, size: int) -> str:
        rate = self.rate()
        if not rate or rate <= 0:
            return f"{human_size(done)} of {human_size(size)}"
        return f"{human_size(done)} of {human_size(size)} \u00b7 {human_size(int(rate))}/s \u00b7 {time_left((size - done) / rate)}"


def time_left(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    if seconds < 60:
        return f"{seconds} s left"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s left"
    return f"{seconds // 3600} h {seconds // 60 % 60:02d} min left"


def shortened(name: str) -> str:
    name = one_line(name)
    return name if len(name) <= NAME_WIDTH else name[:NAME_WIDTH - 12] + "\u2026" + name[-11:]


class TransferCard(ttk.Frame):
    """One transfer; `show(transfer)` after each change. `opener` opens a path (xdg-open).
    `earlier`: the card this one replaces (Tk destroys an embedded window whose text is
    deleted, so a history drawn again draws new cards): its rate samples and thumbnail.
    `around_change(change)`: runs a change that may make the card taller (the conversation
    keeps its view at the end if it was there)."""

    def __init__(self, parent, look: Look, backend: ChatBackend, transfer: Transfer,
                 now: Callable[[], float], opener: Callable[[str], None], thumbnailer: Thumbnailer,
                 earlier: TransferCard | None = None,
                 around_change: Callable[[Callable[[], None]], None] = lambda change: change()):
        side = "Me" if transfer.outgoing else "Them"
        super().__init__(parent, style=f"Card{side}.TFrame", padding=(12, 8))
        self._backend = backend
        self._opener = opener
        self._thumbnailer = thumbnailer
        self._around_change = around_change
        self._meter = earlier._meter if earlier else RateMeter(now)
        self.transfer = transfer
        self.thumbnail: tk.PhotoImage | None = None  # kept: Tk forgets an image nobody holds
        self._thumbnail_asked = earlier is not None and earlier._thumbnail_asked
        label, muted = f"Card{side}.TLabel", f"Card{side}Muted.TLabel"
        self.picture = ttk.Label(self, style=label)
        self.title = ttk.Label(self, style=label, font=look.bold,
                               text=f"\U0001f4c4 {shortened(transfer.name)}")
        self.meta = ttk.Label(self, style=muted)
        self.progress = ttk.Progressbar(self, length=280, maximum=max(1, transfer.size))
        self.detail = ttk.Label(self, style=muted)
        self.buttons = ttk.Frame(self, style=f"Card{side}.TFrame")
        self.title.grid(row=1, column=0, sticky="w")
        self.meta.grid(row=2, column=0, sticky="w")
        self.buttons.grid(row=5, column=0, sticky="w", pady=(6, 0))
        self._actions: dict[str, ttk.Button] = {}
        self.show(transfer)
        if earlier is not None and earlier.thumbnail is not None:
            self._got_thumbnail(earlier.thumbnail)

    def show(self, t: Transfer) -> None:
        self._around_change(lambda: self._show(t))

    def _show(self, t: Transfer) -> None:
        self.transfer = t
        way = "to" if t.outgoing else "from"
        state = "waiting for an answer" if t.outgoing and t.state == "offered" else _STATE_WORDS[t.state]
        self.meta.configure(text=f"{human_size(t.size)} \u00b7 {way} {one_line(t.contact)} \u00b7 {state}"
                            + (f": {one_line(t.reason)}" if t.state == "cancelled" and t.reason else ""))
        if t.state == "active":
            self._meter.add(t.done)
            self.progress.configure(maximum=max(1, t.size), value=t.done)
            self.detail.configure(text=self._meter.text(t.done, t.size))
            self.progress.grid(row=3, column=0, sticky="we", pady=(6, 0))
            self.detail.grid(row=4, column=0, sticky="w")
        else:
            self.progress.grid_remove()
            self.detail.grid_remove()
        self._set_actions(_actions(t))
        if t.state == "done" and not self._thumbnail_asked and t.path and looks_like_image(t.name):
            self._thumbnail_asked = True
            self._thumbnailer.request(self, t.path, self._got_thumbnail)

    def _got_thumbnail(self, image) -> None:
        if image is None:
            return
        self.thumbnail = image

        def place():
            self.picture.configure(image=image, cursor="hand2")
            self.picture.bind("<Button-1>", lambda e: self.open())
            self.picture.grid(row=0, column=0, sticky="w", pady=(0, 6))
        self._around_change(place)

    def _set_actions(self, names: tuple[str, ...]) -> None:
        if tuple(self._actions) == names:
            return
        for button in self._actions.values():
            button.destroy()
        commands = {"Accept": self.accept, "Decline": self.cancel, "Cancel": self.cancel,
                    "Open": self.open, "Show in folder": self.show_in_folder}
        self._actions = {}
        for name in names:
            button = ttk.Button(self.buttons, text=name, command=commands[name],
                                style="Accent.TButton" if name in ("Accept", "Open") else "TButton")
            button.pack(side="left", padx=(0, 6))
            self._actions[name] = button

    def actions(self) -> list[str]:
        return list(self._actions)

    # User actions.

    def accept(self) -> None:
        self._call(self._backend.accept_file, self.transfer.id)

    def cancel(self) -> None:
        self._call(self._backend.cancel_file, self.transfer.id)

    def open(self) -> None:
        if self.transfer.path:
            self._opener(self.transfer.path)

    def show_in_folder(self) -> None:
        if self.transfer.path:
            self._opener(os.path.dirname(os.path.abspath(self.transfer.path)))

    def _call(self, action, transfer_id: int) -> None:
        try:
            action(transfer_id)
        except UserError as e:  # e.g. the other side cancelled a moment ago
            self.detail.configure(text=str(e))
            self.detail.grid(row=4, column=0, sticky="w")


_STATE_WORDS = {"offered": "offered", "active": "transferring", "done": "done", "cancelled": "cancelled"}


def _actions(t: Transfer) -> tuple[str, ...]:
    if t.state == "offered":
        return ("Cancel",) if t.outgoing else ("Accept", "Decline")
    if t.state == "active":
        return ("Cancel",)
    if t.state == "done" and t.path:
        return ("Open", "Show in folder")
    return ()


class Files:
    """What the conversations share for files: the card maker, the file chooser, the thumbnail
    thread. `opener` and `chooser` are replaced in tests."""

    def __init__(self, look: Look, backend: ChatBackend, now: Callable[[], float],
                 opener: Callable[[str], None] = xdg_open,
                 chooser: Callable[[tk.Misc, Callable[[list[str]], None]], None] = choose_files):
        self._look, self._backend, self._now = look, backend, now
        self._opener, self._chooser = opener, chooser
        self.thumbnailer = Thumbnailer()

    def card(self, parent: tk.Misc, transfer: Transfer, earlier: TransferCard | None = None,
             around_change: Callable[[Callable[[], None]], None] = lambda change: change()) -> TransferCard:
        return TransferCard(parent, self._look, self._backend, transfer, self._now, self._opener,
                            self.thumbnailer, earlier, around_change)

    def choose(self, parent: tk.Misc, on_chosen: Callable[[list[str]], None]) -> None:
        """The file chooser; `on_chosen(paths)` later, if the user picks any."""
        self._chooser(parent, on_chosen)
