"""The main window: contacts on the left, conversations on the right.

Runs inside the Twisted reactor: the caller does `tksupport.install(root)`
and owns the reactor; nothing here calls `mainloop()` or starts a thread.
Backend events arrive as listener calls and update single widgets in place.
"""

from __future__ import annotations

import time
import tkinter as tk
from tkinter import ttk
from typing import Callable

from twisted.logger import Logger

from kadchat.errors import UserError
from kadchat.model import ChatBackend, Contact, Message, Status
from kadchat.ui.gui.contacts import ContactList
from kadchat.ui.gui.conversation import Conversation
from kadchat.ui.gui.dialogs import AddContactDialog, MyCardDialog
from kadchat.ui.gui.mystatus import MyStatusMenu
from kadchat.ui.gui.style import Look
from kadchat.ui.uitext import one_line, status_parts


class ChatWindow:
    """Builds the window in `root`; `start()` connects it to the backend."""

    log = Logger()

    def __init__(self, root: tk.Tk, backend: ChatBackend, on_quit: Callable[[], None],
                 now: Callable[[], float] = time.time):
        self.root = root
        self._backend = backend
        self._now = now
        self.look = Look(root)
        self.conversations: dict[str, Conversation] = {}
        self.dialog: tk.Toplevel | None = None

        root.title(f"kadchat \u2014 {one_line(backend.my_name)}")
        root.minsize(640, 420)
        root.protocol("WM_DELETE_WINDOW", on_quit)

        status_bar = ttk.Frame(root)
        status_bar.pack(side="bottom", fill="x")
        ttk.Separator(status_bar).pack(side="top", fill="x")
        self.status_labels = [ttk.Label(status_bar, style="Status.TLabel") for _ in range(3)]
        for label in self.status_labels:
            label.pack(side="left")
        self.refresh_button = ttk.Button(status_bar, text="Refresh", command=self.refresh)
        self.refresh_button.pack(side="right", padx=8, pady=3)
        self.notice = ttk.Label(status_bar, style="Status.TLabel")
        self.notice.pack(side="right")

        # The top bar spans the window: at 800 px the status bar has no room for more.
        toolbar = ttk.Frame(root)
        toolbar.pack(side="top", fill="x", padx=8, pady=(8, 0))
        self.add_button = ttk.Button(toolbar, text="Add contact\u2026", command=self.add_contact)
        self.card_button = ttk.Button(toolbar, text="My card", command=self.show_card)
        self.my_status = MyStatusMenu(toolbar, self.look, backend)
        self.add_button.pack(side="left", padx=(0, 6))
        self.card_button.pack(side="left")
        self.my_status.pack(side="right")

        panes = ttk.PanedWindow(root, orient="horizontal")
        panes.pack(side="top", fill="both", expand=True, padx=8, pady=(6, 8))
        self.contacts = ContactList(panes, self.look, now, self.open_conversation)
        panes.add(self.contacts, weight=0)

        right = ttk.Frame(panes, style="Paper.TFrame", relief="solid", borderwidth=1)
        self.notebook = ttk.Notebook(right)
        self.notebook.bind("<<NotebookTabChanged>>", self._tab_changed)
        self.placeholder = ttk.Label(
            right, style="Placeholder.TLabel", anchor="center",
            text="Double-click a contact to open a conversation.")
        self.placeholder.pack(fill="both", expand=True)
        panes.add(right, weight=1)

    def start(self) -> None:
        self._backend.subscribe(self)
        for contact in self._backend.contacts():
            self.contacts.show(contact)
        self.status(self._backend.status())

    # Conversations.

    def open_conversation(self, name: str) -> Conversation:
        """The tab for `name`, opened with its history if needed, and selected."""
        tab = self.conversations.get(name)
        if tab is None:
            tab = Conversation(self.notebook, self.look, self._backend, self._contact(name),
                               self._now, self.close_conversation)
            for message in sorted(self._backend.history(name), key=lambda m: m.timestamp):
                tab.show(message)
            self.conversations[name] = tab
            if not self.notebook.tabs():
                self.placeholder.pack_forget()
                self.notebook.pack(fill="both", expand=True)
            self.notebook.add(tab, text=one_line(name))
        self.notebook.select(tab)
        tab.input.focus_set()
        return tab

    def close_conversation(self, name: str) -> None:
        tab = self.conversations.pop(name)
        self.notebook.forget(tab)
        tab.destroy()
        if not self.notebook.tabs():
            self.notebook.pack_forget()
            self.placeholder.pack(fill="both", expand=True)

    def visible_conversation(self) -> str | None:
        selected = self.notebook.select()
        for name, tab in self.conversations.items():
            if str(tab) == selected:
                return name
        return None

    def _tab_changed(self, event) -> None:
        name = self.visible_conversation()
        if name is not None:
            self._mark_read(name)

    def _mark_read(self, name: str) -> None:
        self._backend.mark_read(name)
        self._update_contact(name)

    # Toolbar actions.

    def add_contact(self) -> AddContactDialog:
        self._close_dialog()
        self.dialog = AddContactDialog(self.root, self.look, self._backend, self._contact_added)
        return self.dialog

    def show_card(self) -> MyCardDialog:
        self._close_dialog()
        self.dialog = MyCardDialog(self.root, self.look, self._backend.my_card)
        return self.dialog

    def refresh(self) -> None:
        self.refresh_button.configure(state="disabled")
        self.notice.configure(text="Refreshing\u2026", style="Status.TLabel")
        d = self._backend.refresh()
        d.addCallbacks(self._refreshed, self._refresh_failed)

    def _refreshed(self, _) -> None:
        self.refresh_button.configure(state="normal")
        self.notice.configure(text="")
        self.status(self._backend.status())
        for contact in self._backend.contacts():
            self._show_contact(contact)

    def _refresh_failed(self, failure) -> None:
        self.refresh_button.configure(state="normal")
        if failure.check(UserError):
            reason = str(failure.value)
        else:
            self.log.failure("refresh failed", failure)
            reason = "see the log"
        self.notice.configure(text=f"Refresh failed: {one_line(reason)}",
                              style="Error.TLabel")

    def _contact_added(self, contact: Contact) -> None:
        self.dialog = None
        self.contacts.show(contact)
        self.contacts.select(contact.name)

    def _close_dialog(self) -> None:
        if self.dialog is not None and self.dialog.winfo_exists():
            self.dialog.destroy()
        self.dialog = None

    # Listener events (ChatListener).

    def message(self, message: Message) -> None:
        tab = self.conversations.get(message.contact)
        if tab is not None:
            tab.show(message)
        if not message.outgoing and self.visible_conversation() == message.contact:
            self._mark_read(message.contact)
        else:
            self._update_contact(message.contact)

    def message_state(self, message_id: str, state: str) -> None:
        for name, tab in self.conversations.items():
            if tab.set_state(message_id, state):
                # A sent or delivered message means a session: its route (direct or
                # relayed) can be shown now rather than at the next presence change.
                self._update_contact(name)
                return

    def presence(self, name: str, presence: str) -> None:
        self._update_contact(name)

    def status(self, status: Status) -> None:
        self.my_status.show(status.my_status)
        for label, text in zip(self.status_labels, status_parts(status)):
            label.configure(text=text)

    # Helpers.

    def _contact(self, name: str) -> Contact | None:
        return next((c for c in self._backend.contacts() if c.name == name), None)

    def _update_contact(self, name: str) -> None:
        contact = self._contact(name)
        if contact is not None:
            self._show_contact(contact)

    def _show_contact(self, contact: Contact) -> None:
        self.contacts.show(contact)
        tab = self.conversations.get(contact.name)
        if tab is not None:
            tab.show_contact(contact)
