"""The first-run dialog: the username (and, optionally, a bootstrap node) for a
new identity, for someone who started the window without a terminal.

Like the other dialogs it runs no nested event loop: the reactor keeps running
(tksupport), and `ask_first_run` answers with a Deferred. Bad input is shown in
the dialog, which stays open; closing it is giving up.
"""

from __future__ import annotations

import tkinter as tk
from dataclasses import dataclass
from tkinter import ttk

from twisted.internet import defer

from kadchat.cli import parse_address
from kadchat.errors import UserError
from kadchat.files import parse_host, validate_name
from kadchat.ui.gui.appearance import chosen_mode
from kadchat.ui.gui.style import Look


@dataclass(frozen=True)
class FirstRun:
    name: str
    bootstrap: tuple[str, int] | None  # (host, port) to join through, None: bootstrap.txt's list


def read_answers(name: str, bootstrap: str) -> FirstRun:
    """The dialog's two fields as a FirstRun; UserError saying what is wrong."""
    name = validate_name(name)
    bootstrap = bootstrap.strip()
    if not bootstrap:
        return FirstRun(name, None)
    host, port = parse_address(bootstrap)
    return FirstRun(name, (parse_host(host), port))


class FirstRunDialog(tk.Toplevel):
    """Asks; calls `on_done(FirstRun)` once the answers are good, `on_cancel()` if closed."""

    def __init__(self, root: tk.Misc, look: Look, on_done, on_cancel):
        super().__init__(root, background=look.colours.background)
        self._on_done, self._on_cancel = on_done, on_cancel
        self.title("Welcome to kadchat")
        self.resizable(False, False)
        body = ttk.Frame(self, padding=20)
        body.pack(fill="both", expand=True)
        ttk.Label(body, text="Welcome to kadchat", style="Heading.TLabel").pack(anchor="w")
        ttk.Label(body, wraplength=400, justify="left",
                  text="Choose the name your contacts will see. A new identity (your key and your "
                       "contact card) is made for it on this computer.").pack(anchor="w", pady=(6, 12))
        ttk.Label(body, text="Your name").pack(anchor="w")
        self.name = ttk.Entry(body, width=40)
        self.name.pack(fill="x", pady=(2, 12))
        ttk.Label(body, text="A node to join the network through (optional)").pack(anchor="w")
        self.bootstrap = ttk.Entry(body, width=40)
        self.bootstrap.pack(fill="x", pady=(2, 2))
        ttk.Label(body, wraplength=400, justify="left", style="Muted.TLabel",
                  text="HOST:PORT, e.g. server.example.org:6881, from whoever runs one for your "
                       "group. It is kept in bootstrap.txt once it has answered.").pack(anchor="w")
        self.error = ttk.Label(body, style="Error.TLabel", wraplength=400, justify="left")
        self.error.pack(anchor="w", pady=(10, 0))
        buttons = ttk.Frame(body)
        buttons.pack(fill="x", pady=(12, 0))
        self.start_button = ttk.Button(buttons, text="Start", command=self.submit, default="active",
                                       style="Accent.TButton")
        self.start_button.pack(side="right")
        ttk.Button(buttons, text="Quit", command=self.cancel).pack(side="right", padx=(0, 6))
        for entry in (self.name, self.bootstrap):  # a complaint goes once the user types again
            entry.bind("<Key>", lambda e: self.error.configure(text=""), add=True)
        self.bind("<Return>", lambda e: self.submit())
        self.bind("<Escape>", lambda e: self.cancel())
        self.protocol("WM_DELETE_WINDOW", self.cancel)
        self.name.focus_set()

    def submit(self) -> None:
        try:
            answers = read_answers(self.name.get(), self.bootstrap.get())
        except UserError as e:
            self.error.configure(text=str(e))
            return
        self.destroy()
        self._on_done(answers)

    def cancel(self) -> None:
        self.destroy()
        self._on_cancel()


def ask_first_run(root: tk.Misc) -> defer.Deferred:
    """A Deferred of the FirstRun the user chose; fails with UserError if they close
    the dialog. Cancelling it (the program is stopping) closes the dialog."""
    answered = defer.Deferred(canceller=lambda _: dialog.destroy())

    def closed():
        answered.errback(UserError("no username chosen in the first-run dialog; nothing was created"))
    look = Look(root, chosen_mode())  # the window's theme, light or dark, from the first dialog on
    dialog = FirstRunDialog(root, look, answered.callback, closed)
    dialog.lift()
    return answered
