"""The contact list: one Treeview row per contact, updated row by row."""

from __future__ import annotations

from typing import Callable

from tkinter import ttk

from kadchat.model import Contact, ContactPresence
from kadchat.ui.gui.style import MUTED, Look
from kadchat.ui.uitext import PRESENCE_WORDS, one_line, presence_text


class ContactList(ttk.Frame):
    """Rows keyed by contact name, in name order; `on_open(name)` on double-click."""

    def __init__(self, parent, look: Look, now: Callable[[], float],
                 on_open: Callable[[str], None]):
        super().__init__(parent)
        self._look = look
        self._now = now
        self._on_open = on_open
        self.tree = ttk.Treeview(self, columns=("presence", "unread"), selectmode="browse")
        self.tree.heading("#0", text="Contact", anchor="w")
        self.tree.heading("presence", text="Status", anchor="w")
        self.tree.heading("unread", text="New", anchor="center")
        # Widths from the font, so the longest usual texts fit at any size.
        measure = look.font.measure
        self.tree.column("#0", width=measure("Mmmmmmmm") + 24, minwidth=80, stretch=True)
        longest = max(measure(text) for text in (*PRESENCE_WORDS.values(), "last seen 00 Mmm"))
        self.tree.column("presence", width=longest + 16, stretch=False)
        self.tree.column("unread", width=look.bold.measure("New") + 20, stretch=False,
                         anchor="center")
        self.tree.tag_configure(ContactPresence.OFFLINE, foreground=MUTED)
        self.tree.tag_configure("unread", font=look.bold)
        scroll = ttk.Scrollbar(self, orient="vertical", command=self.tree.yview)
        self.tree.configure(yscrollcommand=scroll.set)
        self.tree.pack(side="left", fill="both", expand=True)
        scroll.pack(side="right", fill="y")
        self.tree.bind("<Double-1>", self._double_clicked)
        self.tree.bind("<Return>", lambda e: self._open_selected())

    def show(self, contact: Contact) -> None:
        """Add the contact's row, or update it in place."""
        tags = [contact.presence]
        if contact.unread:
            tags.append("unread")
        options = dict(
            text=" " + one_line(contact.name),
            image=self._look.dots[contact.presence],
            values=(presence_text(contact, self._now()), contact.unread or ""),
            tags=tags,
        )
        if self.tree.exists(contact.name):
            self.tree.item(contact.name, **options)
        else:
            self.tree.insert("", self._position(contact.name), iid=contact.name, **options)

    def select(self, name: str) -> None:
        self.tree.selection_set(name)
        self.tree.see(name)

    def names(self) -> list[str]:
        return list(self.tree.get_children())

    def _position(self, name: str) -> int:
        key = name.casefold()
        return sum(1 for other in self.tree.get_children() if other.casefold() < key)

    def _double_clicked(self, event) -> str | None:
        row = self.tree.identify_row(event.y)
        if row:
            self._on_open(row)
            return "break"
        return None

    def _open_selected(self) -> None:
        for name in self.tree.selection():
            self._on_open(name)
