"""The chat list: one row per contact with its presence dot, name, the last
message (or the presence when there is none), its time and an unread badge.

Rows are in order of the latest message, newest first; contacts without any
in name order after them. A right-click offers rename, remove and block.
"""

from __future__ import annotations

import tkinter as tk
from typing import Callable

from tkinter import ttk

from kadchat.model import Contact, ContactPresence, Message
from kadchat.ui.gui.style import Look
from kadchat.ui.uitext import one_line, presence_text, when

# Negative circled numbers: a round badge in any font that has the dingbats.
BADGES = "\u2776\u2777\u2778\u2779\u277a\u277b\u277c\u277d\u277e\u277f" + "".join(
    map(chr, range(0x24EB, 0x24F5)))  # 1-10, then 11-20
MENU = (("Open", "open"), ("Rename\u2026", "rename"), ("Remove\u2026", "remove"),
        ("Block\u2026", "block"))
INDENT = 44  # px of the name column before and around the dot (the Treeview's indent and padding)


def badge(unread: int) -> str:
    if not unread:
        return ""
    return BADGES[unread - 1] if unread <= len(BADGES) else f"{len(BADGES)}+"


class ContactList(ttk.Frame):
    """Rows keyed by contact name; `on_open(name)` on a click, `on_action(action, name)`
    from the context menu (action: one of MENU's)."""

    def __init__(self, parent, look: Look, now: Callable[[], float],
                 on_open: Callable[[str], None], on_action: Callable[[str, str], None]):
        super().__init__(parent)
        self._look = look
        self._now = now
        self._on_open = on_open
        self._on_action = on_action
        self._latest: dict[str, float] = {}  # name -> time of the last message
        self._shown: dict[str, tuple[Contact, Message | None]] = {}  # to draw again at another width
        self._fitted_to: int | None = None  # the name column's width the texts were cut for
        self.tree = ttk.Treeview(self, name="chats", columns=("side", "presence", "unread"),
                                 displaycolumns=("side",), show="tree", selectmode="browse")
        measure = look.font.measure
        self.tree.column("#0", width=measure("m" * 14), minwidth=120, stretch=True)
        self.tree.column("side", width=measure("00 Mmm") + 16, stretch=False, anchor="e")
        look.painted(self, lambda: self.tree.tag_configure(ContactPresence.OFFLINE,
                                                           foreground=look.colours.muted))
        self.tree.tag_configure("unread", font=look.bold)
        self.empty = ttk.Label(self.tree, text="No chats yet", style="Muted.TLabel")
        self.empty.place(relx=0.5, rely=0.3, anchor="center")
        scroll = ttk.Scrollbar(self, orient="vertical", command=self.tree.yview)
        self.tree.configure(yscrollcommand=scroll.set)
        self.tree.pack(side="left", fill="both", expand=True)
        scroll.pack(side="right", fill="y")
        self.tree.bind("<<TreeviewSelect>>", lambda e: self._open_selected())
        self.tree.bind("<Return>", lambda e: self._open_selected())
        self.tree.bind("<Button-3>", self._context_menu)
        self.tree.bind("<Configure>", lambda e: self.after_idle(self._fit_previews))  # once the columns are laid out
        self.menu = tk.Menu(self, tearoff=False)
        for label, action in MENU:
            self.menu.add_command(label=label, command=lambda a=action: self._chosen(a))
        self._menu_for: str | None = None

    def show(self, contact: Contact, last: Message | None) -> None:
        """Add the contact's row, or update it in place (and move it if its last message is newer)."""
        self._shown[contact.name] = (contact, last)
        tags = [contact.presence]
        if contact.unread:
            tags.append("unread")
        status = presence_text(contact, self._now())
        if last is None:
            preview, side = status, ""
            self._latest.pop(contact.name, None)
        else:
            preview = ("You: " if last.outgoing else "") + one_line(last.text)
            side = when(last.timestamp, self._now())
            self._latest[contact.name] = last.timestamp
        room = self.tree.column("#0", "width") - INDENT - self._look.dots[contact.presence].width()
        options = dict(
            text=f" {_fitted(one_line(contact.name), self._look.bold, room)}\n"
                 f" {_fitted(preview, self._look.bold if contact.unread else self._look.font, room)}",
            image=self._look.dots[contact.presence],
            values=(f"{side}\n{badge(contact.unread)}", status, contact.unread or ""),
            tags=tags,
        )
        if self.tree.exists(contact.name):
            self.tree.item(contact.name, **options)
        else:
            self.tree.insert("", "end", iid=contact.name, **options)
            self.empty.place_forget()
        self.tree.move(contact.name, "", self._position(contact.name))

    def remove(self, name: str) -> None:
        if self.tree.exists(name):
            self.tree.delete(name)
        self._latest.pop(name, None)
        self._shown.pop(name, None)
        if not self._shown:
            self.empty.place(relx=0.5, rely=0.3, anchor="center")

    def _fit_previews(self) -> None:
        room = self.tree.column("#0", "width")
        if room != self._fitted_to:
            self._fitted_to = room
            for contact, last in list(self._shown.values()):
                self.show(contact, last)

    def select(self, name: str) -> None:
        if self.tree.exists(name) and self.tree.selection() != (name,):
            self.tree.selection_set(name)
        if self.tree.exists(name):
            self.tree.see(name)

    def names(self) -> list[str]:
        return list(self.tree.get_children())

    def _order(self, name: str) -> tuple:
        latest = self._latest.get(name)
        return (latest is None, -(latest or 0), name.casefold())

    def _position(self, name: str) -> int:
        key = self._order(name)
        return sum(1 for other in self.tree.get_children() if other != name and self._order(other) < key)

    def _open_selected(self) -> None:
        for name in self.tree.selection():
            self._on_open(name)

    def _context_menu(self, event) -> None:
        row = self.tree.identify_row(event.y)
        if not row:
            return
        self._menu_for = row
        self.menu.tk_popup(event.x_root, event.y_root)

    def _chosen(self, action: str) -> None:
        if self._menu_for is not None:
            self._on_action(action, self._menu_for)


def _fitted(text: str, font, room: int) -> str:
    """`text`, cut with an ellipsis to `room` pixels in `font`."""
    if font.measure(text) <= room:
        return text
    low, high = 0, len(text)
    while low < high:  # the longest prefix that fits with the ellipsis
        middle = (low + high + 1) // 2
        if font.measure(text[:middle] + "\u2026") <= room:
            low = middle
        else:
            high = middle - 1
    return text[:low].rstrip() + "\u2026"
