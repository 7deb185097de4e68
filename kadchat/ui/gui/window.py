"""The main window: chats on the left, conversations on the right.

Runs inside the Twisted reactor: the caller does `tksupport.install(root)`
and owns the reactor; nothing here calls `mainloop()` or starts a thread
(desktop notifications have one of their own, kadchat.ui.gui.notify).
Backend events arrive as listener calls and update single widgets in place.
"""

from __future__ import annotations

import gc
import time
import tkinter as tk
from pathlib import Path
from tkinter import ttk
from typing import Callable

from twisted.logger import Logger

from kadchat.errors import UserError
from kadchat.model import ChatBackend, Contact, ContactRequest, Message, Status, Transfer
from kadchat.ui.gui.appearance import ModeWatcher, chosen_mode, forced_mode
from kadchat.ui.gui.contacts import ContactList
from kadchat.ui.gui.conversation import Conversation
from kadchat.ui.gui.dialogs import AddContactDialog, ConfirmDialog, MyCardDialog, RenameDialog
from kadchat.ui.gui.mystatus import MyStatusMenu
from kadchat.ui.gui.notify import Notifier
from kadchat.ui.gui.requests import RequestsPanel
from kadchat.ui.gui.search import SearchBox
from kadchat.ui.gui.style import Look
from kadchat.ui.gui.filechooser import choose_files
from kadchat.ui.gui.transfercard import Files, xdg_open
from kadchat.transfer.sizes import human_size
from kadchat.ui.gui.winstate import MIN_SIZE, initial_geometry, save_geometry
from kadchat.ui.uitext import one_line, status_parts

LEFT_WIDTH = 290  # px: the chat list column, at any window size (the sash moves it)
MODE_POLL = 1000  # ms between looks at what the desktop's colour scheme watcher heard
SAVE_DELAY = 500  # ms after the last move or resize before window.json is written
PROGRESS_POLL = 500  # ms: the backend tells a transfer's changes of state, its progress is asked for


class ChatWindow:
    """Builds the window in `root`; `start()` connects it to the backend.

    `window_file`: where the size and place are remembered (None: nowhere);
    `notifier`: desktop notifications for messages and file offers while the window is not focused;
    `opener`: opens a received file or its folder (xdg-open); `chooser`: the file chooser;
    `mode`: "light" or "dark"; None follows the desktop (and its changes) unless
    KADCHAT_THEME says."""

    log = Logger()

    def __init__(self, root: tk.Tk, backend: ChatBackend, on_quit: Callable[[], None],
                 now: Callable[[], float] = time.time, window_file: Path | None = None,
                 notifier: Notifier | None = None, mode: str | None = None,
                 opener: Callable[[str], None] = xdg_open,
                 chooser: Callable[[tk.Misc, Callable[[list[str]], None]], None] = choose_files):
        self.root = root
        self._backend = backend
        self._now = now
        self._window_file = window_file
        self._notifier = notifier if notifier is not None else Notifier()
        self._save_pending: str | None = None
        self.look = Look(root, mode or chosen_mode())
        self.files = Files(self.look, backend, now, opener, chooser)
        self._offers_told: set[int] = set()  # incoming offers already notified
        self._progress_pending: str | None = None  # the next look at running transfers
        # Tk objects left as garbage (an earlier window's) are freed here, in Tk's thread:
        # finalised by a worker thread that ran the collector, Tcl would abort the process.
        gc.collect()
        self._mode_watcher = ModeWatcher() if mode is None and forced_mode() is None else None
        if self._mode_watcher is not None:
            root.after(MODE_POLL, self._follow_mode)
        self.conversations: dict[str, Conversation] = {}
        self.dialog: tk.Toplevel | None = None
        self._last: dict[str, Message] = {}  # contact -> the latest message, for the chat list

        self._title = f"kadchat \u2014 {one_line(backend.my_name)}"
        root.title(self._title)
        root.minsize(*MIN_SIZE)
        if window_file is not None:
            root.geometry(initial_geometry(window_file, (root.winfo_screenwidth(),
                                                         root.winfo_screenheight())))
            root.bind("<Configure>", self._configured, add="+")
        root.protocol("WM_DELETE_WINDOW", lambda: self._quit(on_quit))
        root.bind("<FocusIn>", self._focused, add="+")
        root.bind("<Control-f>", lambda e: self.search.entry.focus_set())

        status_bar = ttk.Frame(root)
        status_bar.pack(side="bottom", fill="x")
        ttk.Separator(status_bar).pack(side="top", fill="x")
        self.status_labels = [ttk.Label(status_bar, style="Status.TLabel") for _ in range(3)]
        for label in self.status_labels:
            label.pack(side="left")
        self.refresh_button = ttk.Button(status_bar, text="Refresh", command=self.refresh)
        self.refresh_button.pack(side="right", padx=8, pady=4)
        self.notice = ttk.Label(status_bar, style="Status.TLabel")
        self.notice.pack(side="right")

        toolbar = ttk.Frame(root)
        toolbar.pack(side="top", fill="x", padx=10, pady=(10, 0))
        self.add_button = ttk.Button(toolbar, text="Add contact\u2026", command=self.add_contact)
        self.card_button = ttk.Button(toolbar, text="My card", command=self.show_card)
        self.my_status = MyStatusMenu(toolbar, self.look, backend)
        self.add_button.pack(side="left", padx=(0, 6))
        self.card_button.pack(side="left")
        self.my_status.pack(side="right")

        self.banner = ttk.Frame(root, style="Banner.TFrame", padding=(12, 8))
        self.banner_text = ttk.Label(self.banner, style="Banner.TLabel", wraplength=700,
                                     justify="left")
        self.banner_text.pack(side="left", fill="x", expand=True)
        ttk.Button(self.banner, text="Try again", command=self.refresh).pack(side="right")

        self.panes = ttk.PanedWindow(root, orient="horizontal")
        self.panes.pack(side="top", fill="both", expand=True, padx=10, pady=(8, 8))
        left = ttk.Frame(self.panes, width=LEFT_WIDTH)
        left.pack_propagate(False)  # its own width, not its widgets' wish
        self.search = SearchBox(left, self.look, backend, now, self._search_shown, self._found)
        self.search.pack(side="top", fill="x", pady=(0, 8))
        self.requests = RequestsPanel(left, self.look, self._answer_request)
        self.contacts = ContactList(left, self.look, now, self.open_conversation,
                                    self._contact_action)
        self.contacts.pack(side="top", fill="both", expand=True)
        self.panes.add(left, weight=0)

        self.right = ttk.Frame(self.panes)
        self.notebook = ttk.Notebook(self.right)
        self.notebook.bind("<<NotebookTabChanged>>", self._tab_changed)
        self.placeholder = self._empty_state(self.right)
        self.placeholder.pack(fill="both", expand=True)
        self.panes.add(self.right, weight=1)

    def start(self) -> None:
        self._backend.subscribe(self)
        for contact in self._backend.contacts():
            self._remember_last(contact.name)
            self.contacts.show(contact, self._last.get(contact.name))
        self._show_requests()  # and the overview: title, empty state
        self.status(self._backend.status())
        self._poll_progress()

    def has_focus(self) -> bool:
        """Whether one of this window's widgets has the keyboard (the desktop's focus)."""
        return self.root.focus_displayof() is not None

    # Conversations.

    def open_conversation(self, name: str) -> Conversation:
        """The tab for `name`, opened with its latest history if needed, and selected."""
        tab = self.conversations.get(name)
        if tab is None:
            tab = Conversation(self.notebook, self.look, self._backend, self._contact(name),
                               self._now, self.close_conversation, self._sent, self.files)
            self.conversations[name] = tab
            if not self.notebook.tabs():
                self.placeholder.pack_forget()
                self.notebook.pack(fill="both", expand=True)
            self.notebook.add(tab, text=one_line(name))
            tab.load()
        self.notebook.select(tab)
        self.contacts.select(name)
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
            self.contacts.select(name)
            self._mark_read(name)

    def _mark_read(self, name: str) -> None:
        self._backend.mark_read(name)
        self._update_contact(name)

    def _found(self, message: Message) -> None:
        if self._contact(message.contact) is not None:
            self.open_conversation(message.contact).reveal(message.id)

    def _search_shown(self, shown: bool) -> None:
        if shown:
            self.contacts.pack_forget()
            self.search.message.pack(side="top", fill="x")
            self.search.results.pack(side="top", fill="both", expand=True)
        else:
            self.search.results.pack_forget()
            self.search.message.pack_forget()
            self.contacts.pack(side="top", fill="both", expand=True)

    # Toolbar actions and dialogs.

    def add_contact(self) -> AddContactDialog:
        return self._open_dialog(AddContactDialog(self.root, self.look, self._backend,
                                                  self._contact_added))

    def show_card(self) -> MyCardDialog:
        return self._open_dialog(MyCardDialog(self.root, self.look, self._backend.my_card))

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
        self._show_contact(contact)
        self.contacts.select(contact.name)
        self._update_overview()

    def _contact_action(self, action: str, name: str) -> tk.Toplevel | None:
        shown = one_line(name)
        if action == "open":
            self.open_conversation(name)
            return None
        if action == "rename":
            was_open = name in self.conversations  # the backend's contacts_changed closes it
            return self._open_dialog(RenameDialog(
                self.root, self.look, self._backend, name,
                lambda old, contact: self._renamed(old, contact, was_open)))
        if action == "remove":
            return self._open_dialog(ConfirmDialog(
                self.root, self.look, f"Remove {shown}",
                f"Remove {shown} from your contacts? Your messages stay on this computer, "
                f"and {shown} can ask to be added again.", "Remove",
                lambda: self._backend.remove_contact(name)))
        return self._open_dialog(ConfirmDialog(
            self.root, self.look, f"Block {shown}",
            f"Block {shown}? They are removed from your contacts, and nothing from their "
            "card reaches you again: no messages, no requests.", "Block",
            lambda: self._backend.block(name)))

    def _renamed(self, old: str, contact: Contact, reopen: bool) -> None:
        self.dialog = None
        self.contacts_changed()  # the old name's row and tab go
        if reopen:
            self.open_conversation(contact.name)

    def _answer_request(self, answer: str, name: str) -> None:
        try:
            if answer == "accept":
                contact = self._backend.accept_request(name)
            elif answer == "ignore":
                self._backend.ignore_request(name)
            else:
                self._backend.block(name)
        except UserError as e:
            self.notice.configure(text=one_line(str(e)), style="Error.TLabel")
        else:
            if answer == "accept":
                self._contact_added(contact)
        self._show_requests()

    def _open_dialog(self, dialog: tk.Toplevel) -> tk.Toplevel:
        if self.dialog is not None and self.dialog.winfo_exists():
            self.dialog.destroy()
        self.dialog = dialog
        return dialog

    # Listener events (ChatListener).

    def message(self, message: Message) -> None:
        self._last[message.contact] = message
        tab = self.conversations.get(message.contact)
        if tab is not None:
            tab.show(message)
        focused = self.has_focus()
        if not message.outgoing and not focused:
            self._notifier.notify(message.contact, one_line(message.contact), one_line(message.text))
        if (not message.outgoing and focused and tab is not None and tab.at_end()
                and self.visible_conversation() == message.contact):
            self._mark_read(message.contact)
        else:
            self._update_contact(message.contact)

    def _sent(self, message: Message) -> None:
        self._last[message.contact] = message
        self._update_contact(message.contact)

    def message_state(self, message_id: str, state: str) -> None:
        for name, tab in self.conversations.items():
            if tab.set_state(message_id, state):
                last = self._last.get(name)
                if last is not None and last.id == message_id:
                    self._remember_last(name)
                # A sent or delivered message means a session: its route (direct or
                # relayed) can be shown now rather than at the next presence change.
                self._update_contact(name)
                return

    def transfer(self, transfer: Transfer) -> None:
        tab = self.conversations.get(transfer.contact)
        incoming_offer = transfer.state == "offered" and not transfer.outgoing
        if tab is None and incoming_offer and self._contact(transfer.contact) is not None:
            current = self.visible_conversation()
            tab = self.open_conversation(transfer.contact)  # shows the offer's card too
            if current is not None:  # an offer does not take the user away from another chat
                self.open_conversation(current)
        elif tab is not None:
            tab.show_transfer(transfer)
        if transfer.state == "active" and self._progress_pending is None:
            self._progress_pending = self.root.after(PROGRESS_POLL, self._poll_progress)
        if incoming_offer and transfer.id not in self._offers_told:
            self._offers_told.add(transfer.id)
            if not self.has_focus():
                self._notifier.notify(f"file:{transfer.id}", one_line(transfer.contact),
                                      f"offers {one_line(transfer.name)} ({human_size(transfer.size)})")

    def _poll_progress(self) -> None:
        """The running transfers' progress into their cards, until none runs."""
        self._progress_pending = None
        running = [t for t in self._backend.transfers() if t.state == "active"]
        for transfer in running:
            tab = self.conversations.get(transfer.contact)
            if tab is not None:
                tab.show_transfer(transfer)
        if running:
            self._progress_pending = self.root.after(PROGRESS_POLL, self._poll_progress)

    def presence(self, name: str, presence: str) -> None:
        self._update_contact(name)

    def status(self, status: Status) -> None:
        self.my_status.show(status.my_status)
        for label, text in zip(self.status_labels, status_parts(status)):
            label.configure(text=text)
        unreachable = getattr(status, "unreachable", ())  # the setup side's field, where it exists
        if unreachable:
            self.banner_text.configure(text=(
                "Can\u2019t reach the network: no answer from " + ", ".join(unreachable) + ". "
                "Check your internet connection, or ask a friend for a bootstrap node "
                "(client_node.py -I HOST -P PORT)."))
            self.banner.pack(side="top", fill="x", padx=10, pady=(8, 0), before=self.panes)
        else:
            self.banner.pack_forget()

    def contact_request(self, request: ContactRequest) -> None:
        self._show_requests()
        if not self.has_focus():
            self._notifier.notify(f"request:{request.name}", "Contact request",
                                  f"{one_line(request.name)} wants to chat")

    def contacts_changed(self) -> None:
        contacts = {c.name: c for c in self._backend.contacts()}
        for name in self.contacts.names():
            if name not in contacts:
                self.contacts.remove(name)
                self._last.pop(name, None)
                if name in self.conversations:
                    self.close_conversation(name)
        for name, contact in contacts.items():
            if name not in self._last:
                self._remember_last(name)
            self._show_contact(contact)
        self._show_requests()

    # Helpers.

    def _contact(self, name: str) -> Contact | None:
        return next((c for c in self._backend.contacts() if c.name == name), None)

    def _remember_last(self, name: str) -> None:
        latest = self._backend.history(name, 1)
        if latest:
            self._last[name] = latest[-1]
        else:
            self._last.pop(name, None)

    def _update_contact(self, name: str) -> None:
        contact = self._contact(name)
        if contact is not None:
            self._show_contact(contact)
        self._update_title()

    def _show_contact(self, contact: Contact) -> None:
        self.contacts.show(contact, self._last.get(contact.name))
        tab = self.conversations.get(contact.name)
        if tab is not None:
            tab.show_contact(contact)

    def _show_requests(self) -> None:
        requests = self._backend.requests()
        self.requests.show(requests)
        self._update_overview()
        if requests:
            self.requests.pack(side="top", fill="x", pady=(0, 8), before=self.search.results
                               if self.search.results.winfo_ismapped() else self.contacts)
        else:
            self.requests.pack_forget()

    def _update_title(self) -> None:
        unread = sum(c.unread for c in self._backend.contacts())
        self.root.title(f"({unread}) {self._title}" if unread else self._title)

    def _update_overview(self) -> None:
        """The title's unread count, and the empty state's words for who has no contacts yet."""
        self._update_title()
        newcomer = not self._backend.contacts()
        self.welcome.configure(text=(
            f"Welcome, {one_line(self._backend.my_name)}!" if newcomer else "No chat open"))
        self.steps.configure(text=(
            "kadchat has no servers: you chat with the people who have your card, "
            "and whose card you have.\n\n"
            "1.  Share your card: send it to a friend by mail or another messenger.\n"
            "2.  Add a contact: paste the card a friend sent you." if newcomer else
            "Pick a chat on the left, or add another contact with their card.")
            + ("\n\nSomeone who has your card asks to chat: answer on the left."
               if self._backend.requests() else ""))

    def _empty_state(self, parent) -> ttk.Frame:
        frame = ttk.Frame(parent, padding=40)
        inner = ttk.Frame(frame)
        inner.place(relx=0.5, rely=0.42, anchor="center")
        self.welcome = ttk.Label(inner, style="Heading.TLabel")
        self.welcome.pack(anchor="w")
        self.steps = ttk.Label(inner, style="Muted.TLabel", wraplength=420, justify="left")
        self.steps.pack(anchor="w", pady=(12, 16))
        row = ttk.Frame(inner)
        row.pack(anchor="w")
        self.share_button = ttk.Button(row, text="Share my card", style="Accent.TButton",
                                       command=self.show_card)
        self.share_button.pack(side="left")
        self.add_first_button = ttk.Button(row, text="Add a contact\u2026", command=self.add_contact)
        self.add_first_button.pack(side="left", padx=(8, 0))
        return frame

    def _follow_mode(self) -> None:
        mode = self._mode_watcher.latest()
        if mode is not None and mode != self.look.mode:
            self.look.set_mode(mode)
        self.root.after(MODE_POLL, self._follow_mode)

    def _focused(self, event) -> None:
        """Back at the window: what the open conversation shows at its end is read now."""
        name = self.visible_conversation()
        contact = self._contact(name) if name is not None else None
        if contact is not None and contact.unread and self.conversations[name].at_end():
            self._mark_read(name)

    def _configured(self, event) -> None:
        if event.widget is not self.root:
            return
        if self._save_pending is not None:
            self.root.after_cancel(self._save_pending)
        self._save_pending = self.root.after(SAVE_DELAY, self._save_geometry)

    def _save_geometry(self) -> None:
        self._save_pending = None
        if self.root.wm_state() == "normal":
            save_geometry(self._window_file, self.root.wm_geometry())

    def _quit(self, on_quit: Callable[[], None]) -> None:
        if self._save_pending is not None:
            self.root.after_cancel(self._save_pending)
            self._save_geometry()
        self._notifier.close()
        if self._progress_pending is not None:
            self.root.after_cancel(self._progress_pending)
        self.files.thumbnailer.close()
        if self._mode_watcher is not None:
            self._mode_watcher.stop()
        on_quit()
