"""Search over all conversations (the backend's full-text search), in the left column.

Enter runs the search; the results replace the chat list until the box is
cleared (Escape or the x button). Choosing a result opens its conversation at
that message.
"""

from __future__ import annotations

import tkinter as tk
from typing import Callable

from tkinter import ttk

from kadchat.errors import UserError
from kadchat.model import ChatBackend, Message
from kadchat.ui.uitext import when
from kadchat.ui.gui.style import Look
from kadchat.ui.uitext import one_line

PLACEHOLDER = "Search messages"
LIMIT = 50
SNIPPET_CHARACTERS = 70


class SearchBox(ttk.Frame):
    """The entry; `on_results(shown)` when results appear (True) or go (False)."""

    def __init__(self, parent, look: Look, backend: ChatBackend, now: Callable[[], float],
                 on_results: Callable[[bool], None], on_found: Callable[[Message], None]):
        super().__init__(parent)
        self._backend = backend
        self._now = now
        self._on_results = on_results
        self._on_found = on_found
        self._found: dict[str, Message] = {}
        self._look = look
        self._hint = False  # the box shows PLACEHOLDER, not the user's text
        self.query = tk.StringVar(self)
        self.entry = ttk.Entry(self, textvariable=self.query, width=10)
        self.entry.pack(side="left", fill="x", expand=True)
        self.clear_button = ttk.Button(self, text="\u2715", width=3, command=self.clear)
        self.entry.bind("<Return>", lambda e: self.search())
        self.entry.bind("<KP_Enter>", lambda e: self.search())
        self.entry.bind("<Escape>", lambda e: self.clear())
        self.entry.bind("<FocusIn>", lambda e: self._placeholder(False))
        self.entry.bind("<FocusOut>", lambda e: self._placeholder(True))
        self._placeholder(True)
        look.painted(self.entry, lambda: self._hint and self.entry.configure(foreground=look.colours.muted))
        self.results = ttk.Treeview(parent, columns=("when",), show="tree", selectmode="browse")
        self.results.column("when", width=70, stretch=False, anchor="e")
        self.results.bind("<<TreeviewSelect>>", lambda e: self._chosen())
        self.results.bind("<Return>", lambda e: self._chosen())
        self.message = ttk.Label(parent, style="Muted.TLabel", wraplength=240)

    def search(self, text: str | None = None) -> list[Message]:
        if text is not None:
            self._placeholder(False)
            self.query.set(text)
        text = self._text()
        if not text:
            return []
        try:
            found = self._backend.search(text, LIMIT)
        except UserError as e:
            found, problem = [], str(e)
        else:
            problem = "" if found else f"No messages with \u201c{one_line(text)}\u201d."
        self.results.delete(*self.results.get_children())
        self._found = {m.id: m for m in found}
        for m in found:
            snippet = ("You: " if m.outgoing else "") + one_line(m.text)
            if len(snippet) > SNIPPET_CHARACTERS:
                snippet = snippet[:SNIPPET_CHARACTERS - 1] + "\u2026"
            self.results.insert("", "end", iid=m.id, text=f" {one_line(m.contact)}\n {snippet}",
                                values=(when(m.timestamp, self._now()),))
        self.message.configure(text=problem)
        self.clear_button.pack(side="left", padx=(4, 0))
        self._on_results(True)
        return found

    def clear(self) -> None:
        self._placeholder(False)
        self.query.set("")
        if self.focus_get() is not self.entry:
            self._placeholder(True)
        self._found = {}
        self.results.delete(*self.results.get_children())
        self.message.configure(text="")
        self.clear_button.pack_forget()
        self._on_results(False)

    def _chosen(self) -> None:
        for message_id in self.results.selection():
            self._on_found(self._found[message_id])

    def _placeholder(self, show: bool) -> None:
        """Grey "Search messages" in the empty box, gone while the user types there."""
        if show and not self.query.get():
            self.query.set(PLACEHOLDER)
            self.entry.configure(foreground=self._look.colours.muted)
            self._hint = True
        elif not show and self._hint:
            self.query.set("")
            self.entry.configure(foreground="")
            self._hint = False

    def _text(self) -> str:
        return "" if self._hint else self.query.get().strip()
