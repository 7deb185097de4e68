"""One conversation tab: header, the messages as bubbles, the input box.

Files: the attach button (a file chooser) or files dropped onto the tab are
offered to the contact; each transfer is a card (kadchat.ui.gui.transfercard)
in the history, after the messages that were there when it began.

Messages are grouped under the sender's name (a new group after five quiet
minutes), each with its HH:MM and, for one's own, a tick for its state. The
latest page of history loads first; scrolling to the top loads the page
before it. A message arriving while the user reads back does not move the
view: a "new messages" button jumps down instead.
"""

from __future__ import annotations

import bisect
import time
from dataclasses import replace
import tkinter as tk
from tkinter import ttk
from typing import Callable

from kadchat.errors import UserError
from kadchat.model import ChatBackend, Contact, Message, MessageState, Transfer
from kadchat.ui.gui.filedrop import accept_drops
from kadchat.ui.gui.style import Look
from kadchat.ui.gui.transfercard import Files, TransferCard
from kadchat.ui.uitext import day, presence_text, safe_text

PAGE = 200  # messages per history call
GROUP_GAP = 300.0  # seconds of quiet that start a new group under the name
BUBBLE_WIDTH = 620  # px at most: long lines stay readable in a wide window
TICKS = {
    MessageState.SENDING: "\u2026",
    MessageState.QUEUED: "\u25f7\u00a0queued",  # on this computer only
    MessageState.STORED: "\u21e7\u00a0stored",  # in the network: the contact may fetch it
    MessageState.SENT: "\u2713",
    MessageState.DELIVERED: "\u2713\u2713",
}


def hh_mm(timestamp: float) -> str:
    return time.strftime("%H:%M", time.localtime(timestamp))


class Conversation(ttk.Frame):
    """A chat with one contact; messages are appended and updated in place."""

    def __init__(self, parent, look: Look, backend: ChatBackend, contact: Contact,
                 now: Callable[[], float], on_close: Callable[[str], None],
                 on_sent: Callable[[Message], None], files: Files):
        super().__init__(parent, padding=(10, 8))
        self.name = contact.name
        self._files = files
        self.cards: dict[int, TransferCard] = {}  # transfer id -> its card, in the order begun
        self._look = look
        self._backend = backend
        self._now = now
        self._on_sent = on_sent
        self._messages: list[Message] = []  # oldest first, as shown
        self._keys: list[tuple] = []  # their sort keys, for bisect
        self._by_id: dict[str, Message] = {}
        self.complete = False  # nothing older to load
        self._loading = False  # a load of older messages is scheduled

        header = ttk.Frame(self)
        header.pack(side="top", fill="x", pady=(0, 8))
        self.title = ttk.Label(header, text=safe_text(contact.name), style="Title.TLabel")
        self.title.pack(side="left")
        self.presence = ttk.Label(header, style="Muted.TLabel", compound="left")
        self.presence.pack(side="left", padx=12)
        ttk.Button(header, text="Close", command=lambda: on_close(self.name)).pack(side="right")

        bottom = ttk.Frame(self)
        bottom.pack(side="bottom", fill="x", pady=(8, 0))
        self.input = tk.Text(bottom, height=3, wrap="word", undo=True, padx=8, pady=6)
        self.send_button = ttk.Button(bottom, text="Send", command=self.send, style="Accent.TButton")
        self.attach_button = ttk.Button(bottom, text="\U0001f4ce Attach\u2026", command=self.attach)
        self.retry_button = ttk.Button(bottom, text="Retry failed", command=self.retry_failed)
        self.error = ttk.Label(bottom, style="Error.TLabel")
        self.input.grid(row=0, column=0, rowspan=2, sticky="nsew")
        self.send_button.grid(row=0, column=1, sticky="new", padx=(8, 0))
        self.attach_button.grid(row=0, column=2, sticky="new", padx=(8, 0))
        self.retry_button.grid(row=1, column=1, columnspan=2, sticky="sew", padx=(8, 0))
        self.retry_button.grid_remove()  # shown while a message has failed
        self.error.grid(row=2, column=0, columnspan=3, sticky="w")
        bottom.columnconfigure(0, weight=1)
        self.input.bind("<Return>", self._enter)
        self.input.bind("<KP_Enter>", self._enter)
        self.input.bind("<Shift-Return>", self._newline)

        body = ttk.Frame(self)
        body.pack(side="top", fill="both", expand=True)
        self.history = tk.Text(body, wrap="word", state="disabled", padx=12, pady=10,
                               cursor="arrow")
        self.scroll = ttk.Scrollbar(body, orient="vertical", command=self.history.yview)
        self.history.configure(yscrollcommand=self._scrolled)
        self.scroll.pack(side="right", fill="y")
        self.history.pack(side="left", fill="both", expand=True)
        self.jump = ttk.Button(body, text="\u2193 New messages", style="Accent.TButton",
                               command=self.scroll_to_end)
        h = self.history
        look.painted(self, self._paint)
        h.tag_raise("found")
        h.tag_bind("link", "<Button-1>", self._link_clicked)
        h.tag_bind("link", "<Enter>", lambda e: h.config(cursor="hand2"))
        h.tag_bind("link", "<Leave>", lambda e: h.config(cursor="arrow"))
        h.bind("<Configure>", self._resized)

        self.drops = accept_drops(self, self.send_files)
        self.show_contact(contact)

    def _paint(self) -> None:
        """Colours (again after a switch between light and dark)."""
        look, colours, h = self._look, self._look.colours, self.history
        self.input.configure(**look.text_widget_options())
        h.configure(**dict(look.text_widget_options(), highlightthickness=0))
        # A bubble: the tag's colour, the margin on the other side left as paper.
        h.tag_configure("me", background=colours.bubble_me, rmargin=4, lmargincolor=colours.paper)
        h.tag_configure("them", background=colours.bubble_them, lmargin1=4, lmargin2=4,
                        rmargincolor=colours.paper)
        h.tag_configure("name", font=look.bold, spacing1=10, spacing3=2)
        h.tag_configure("name_me", foreground=colours.accent, justify="right")
        h.tag_configure("name_them", foreground=colours.them)
        h.tag_configure("body", spacing1=3, spacing3=3, spacing2=1)
        h.tag_configure("emoji", font=look.emoji)
        h.tag_configure("meta", foreground=colours.muted, font=look.small)
        h.tag_configure("failed", foreground=colours.error, font=look.small)
        h.tag_configure("link", foreground=colours.error, underline=True, font=look.small)
        h.tag_configure("day", foreground=colours.muted, justify="center", font=look.small,
                        spacing1=12, spacing3=6)
        h.tag_configure("card_me", justify="right", spacing1=8, spacing3=4)
        h.tag_configure("card_them", spacing1=8, spacing3=4, lmargin1=4)
        h.tag_configure("found", background=colours.accent, foreground="#ffffff")

    # Updates from the window.

    def load(self) -> None:
        """The latest page of history."""
        page = self._backend.history(self.name, PAGE)
        self.complete = len(page) < PAGE
        self._add(page)
        for transfer in self._backend.transfers():
            if transfer.contact == self.name:
                self.cards[transfer.id] = self._files.card(self.history, transfer, around_change=self.keeping_end)
        self._render()
        self.scroll_to_end()
        self._update_retry_button()

    def show_contact(self, contact: Contact) -> None:
        facts = [presence_text(contact, self._now())]
        if contact.route:
            facts.append(contact.route)
        self.presence.configure(text=" \u00b7 ".join(facts),
                                image=self._look.dots[contact.presence])

    def show(self, message: Message) -> None:
        """Add the message (or update its state if it is already shown)."""
        if message.id in self._by_id:
            self.set_state(message.id, message.state)
            return
        at_end = self.at_end()
        if self._messages and _key(message) < self._keys[-1]:  # an older one: rare, draw all again
            self._add([message])
            self._render(keep_view=True)
        else:
            previous = self._messages[-1] if self._messages else None
            self._add([message])
            self.history.configure(state="normal")
            self._insert(message, previous)
            self.history.configure(state="disabled")
        if at_end or message.outgoing:
            self.scroll_to_end()
        else:
            self._show_jump()
        self._update_retry_button()

    def set_state(self, message_id: str, state: str) -> bool:
        """Show an outgoing message's new state; False if it is not in this tab."""
        message = self._by_id.get(message_id)
        if message is None:
            return False
        self._replace(replace(message, state=MessageState(state)))
        ranges = self.history.tag_ranges(f"state:{message_id}")
        if ranges:
            start, end = ranges[0], ranges[-1]
            self.history.configure(state="normal")
            self.history.delete(start, end)
            self._insert_state(start, message_id, state)
            self.history.configure(state="disabled")
        self._update_retry_button()
        return True

    def show_transfer(self, transfer: Transfer) -> None:
        """A new card at the end, or the transfer's card updated in place."""
        card = self.cards.get(transfer.id)
        if card is not None:
            card.show(transfer)
            return
        at_end = self.at_end()
        self.cards[transfer.id] = card = self._files.card(self.history, transfer, around_change=self.keeping_end)
        self.history.configure(state="normal")
        self._insert_card(card)
        self.history.configure(state="disabled")
        if at_end or transfer.outgoing:
            self.update_idletasks()  # the card's height, before going to the end
            self.scroll_to_end()
        else:
            self._show_jump()

    def keeping_end(self, change: Callable[[], None]) -> None:
        """Runs `change` (a card growing); a view that showed the end still shows it."""
        at_end = self.at_end()
        change()
        if at_end:
            self.update_idletasks()
            self.scroll_to_end()

    def load_older(self) -> int:
        """The page before the oldest shown; the view stays on what it showed. Returns how many."""
        if self.complete or not self._messages:
            self.complete = True
            return 0
        page = self._backend.history(self.name, PAGE, before=self._messages[0].id)
        self.complete = len(page) < PAGE
        fresh = [m for m in page if m.id not in self._by_id]
        if fresh:
            self._add(fresh)
            self._render(keep_view=True)
            self._update_retry_button()
        return len(fresh)

    def reveal(self, message_id: str) -> bool:
        """Scroll to a message (loading older pages until it is there) and mark it."""
        while message_id not in self._by_id and not self.complete:
            if not self.load_older():
                break
        ranges = self.history.tag_ranges(f"text:{message_id}")
        if not ranges:
            return False
        self.history.tag_remove("found", "1.0", "end")
        self.history.tag_add("found", ranges[0], ranges[-1])
        self.history.see(ranges[0])
        return True

    def at_end(self) -> bool:
        return self.history.yview()[1] >= 0.999

    def scroll_to_end(self) -> None:
        self.history.see("end")
        self.jump.place_forget()

    def shown(self) -> list[Message]:
        return list(self._messages)

    # User actions.

    def send(self) -> None:
        text = self.input.get("1.0", "end-1c").strip()
        if not text:
            return
        try:
            message = self._backend.send_message(self.name, text)
        except UserError as e:
            self.error.configure(text=str(e))
            return
        self.error.configure(text="")
        self.input.delete("1.0", "end")
        self.show(message)
        self._on_sent(message)

    def attach(self) -> None:
        """The file chooser; the files picked are offered to the contact."""
        self._files.choose(self, self.send_files)

    def send_files(self, paths: list[str]) -> None:
        for path in paths:
            try:
                transfer = self._backend.send_file(self.name, path)
            except UserError as e:
                self.error.configure(text=str(e))
                return
            self.error.configure(text="")
            self.show_transfer(transfer)

    def retry_failed(self) -> None:
        for message in self._messages:
            if message.state == MessageState.FAILED:
                self._backend.retry(message.id)

    def _enter(self, event) -> str:
        self.send()
        return "break"

    def _newline(self, event) -> str:
        self.input.insert("insert", "\n")
        return "break"

    def _link_clicked(self, event) -> None:
        for tag in self.history.tag_names(f"@{event.x},{event.y}"):
            if tag.startswith("retry:"):
                self._backend.retry(tag.removeprefix("retry:"))

    # Drawing.

    def _add(self, messages) -> None:
        for message in messages:
            key = _key(message)
            at = bisect.bisect(self._keys, key)
            self._keys.insert(at, key)
            self._messages.insert(at, message)
            self._by_id[message.id] = message

    def _replace(self, message: Message) -> None:
        at = self._messages.index(self._by_id[message.id])
        self._messages[at] = self._by_id[message.id] = message

    def _render(self, keep_view: bool = False) -> None:
        anchor = self._first_visible() if keep_view else None
        self.history.configure(state="normal")
        self.history.delete("1.0", "end")
        previous = None
        for message in self._messages:
            self._insert(message, previous)
            previous = message
        for transfer_id, card in self.cards.items():
            if not card.winfo_exists():  # it was shown: deleting its place destroyed it
                self.cards[transfer_id] = card = self._files.card(self.history, card.transfer, card, self.keeping_end)
            self._insert_card(card)
        self.history.configure(state="disabled")
        if anchor is not None:
            self.history.yview(self.history.tag_ranges(f"msg:{anchor}")[0])

    def _first_visible(self) -> str | None:
        for tag in self.history.tag_names("@0,0"):
            if tag.startswith("msg:"):
                return tag.removeprefix("msg:")
        return None

    def _insert(self, message: Message, previous: Message | None) -> None:
        h, own = self.history, f"msg:{message.id}"
        side = "me" if message.outgoing else "them"
        message_day = day(message.timestamp)
        new_day = previous is None or day(previous.timestamp) != message_day
        if new_day:
            h.insert("end", f"{message_day}\n", ("day", own))
        if new_day or previous.outgoing != message.outgoing or (
                message.timestamp - previous.timestamp > GROUP_GAP):
            who = "You" if message.outgoing else safe_text(message.contact)
            h.insert("end", f"{who}\n", ("name", f"name_{side}", own))
        h.insert("end", *self._look.runs(safe_text(message.text), "body", side, own,
                                           f"text:{message.id}"))
        h.insert("end", f"   {hh_mm(message.timestamp)}", ("body", side, "meta", own))
        if message.outgoing:
            h.insert("end", " ", ("body", side, "meta", own))
            self._insert_state("end", message.id, message.state)
        h.insert("end", "\n", ("body", side, own))

    def _insert_card(self, card: TransferCard) -> None:
        side = "card_me" if card.transfer.outgoing else "card_them"
        self.history.insert("end", "\n", (side,))
        self.history.window_create("end-2c", window=card)
        self.history.tag_add(side, "end-2c linestart", "end-1c")

    def _insert_state(self, index, message_id: str, state: str) -> None:
        tags = ("body", "me", f"msg:{message_id}", f"state:{message_id}")
        if state == MessageState.FAILED:
            self.history.insert(index, "\u26a0\u00a0failed\u00a0\u2014\u00a0", (*tags, "failed"),
                                "retry", (*tags, "link", f"retry:{message_id}"))
        else:
            self.history.insert(index, TICKS.get(state, state), (*tags, "meta"))

    def _resized(self, event) -> None:
        """Bubbles keep a quarter of the width free on the other side, more in a wide window."""
        free = max(40, event.width // 4, event.width - BUBBLE_WIDTH)
        self.history.tag_configure("me", lmargin1=free, lmargin2=free)
        self.history.tag_configure("them", rmargin=free)
        self.history.tag_configure("card_me", lmargin1=free)

    def _scrolled(self, first: str, last: str) -> None:
        self.scroll.set(first, last)
        if float(last) >= 0.999:
            self.jump.place_forget()
        if float(first) <= 0.0 and not self.complete and self._messages and float(last) < 1.0:
            if not self._loading:
                self._loading = True
                self.after_idle(self._load_older_now)

    def _load_older_now(self) -> None:
        self._loading = False
        self.load_older()

    def _show_jump(self) -> None:
        self.jump.place(relx=1.0, rely=1.0, x=-24, y=-12, anchor="se")

    def _update_retry_button(self) -> None:
        if any(m.state == MessageState.FAILED for m in self._messages):
            self.retry_button.grid()
        else:
            self.retry_button.grid_remove()


def _key(message: Message) -> tuple:
    return (message.timestamp, message.outgoing)
