"""One conversation tab: header, history with per-message state, input box."""

from __future__ import annotations

import tkinter as tk
from tkinter import ttk
from typing import Callable

from kadchat.errors import UserError
from kadchat.model import ChatBackend, Contact, Message, MessageState
from kadchat.ui.gui.style import ERROR, ME, MUTED, PAPER, THEM, Look
from kadchat.ui.uitext import clock_time, day, presence_text, safe_text

STATE_LABELS = {
    MessageState.SENDING: "sending\u2026",
    MessageState.QUEUED: "queued\u00a0(on\u00a0this\u00a0computer)",
    MessageState.SENT: "sent",
    MessageState.STORED: "stored\u00a0(in\u00a0the\u00a0network)",
    MessageState.DELIVERED: "delivered\u00a0\u2713",  # no-break spaces: labels wrap whole
    MessageState.FAILED: "failed",
}


class Conversation(ttk.Frame):
    """A chat with one contact; messages are appended and updated in place."""

    def __init__(self, parent, look: Look, backend: ChatBackend, contact: Contact,
                 now: Callable[[], float], on_close: Callable[[str], None]):
        super().__init__(parent, padding=(8, 6))
        self.name = contact.name
        self._look = look
        self._backend = backend
        self._now = now
        self._states: dict[str, str] = {}  # message id -> state, for this tab
        self._last_day = None

        header = ttk.Frame(self)
        header.pack(side="top", fill="x", pady=(0, 6))
        ttk.Label(header, text=safe_text(contact.name), style="Title.TLabel").pack(side="left")
        self.presence = ttk.Label(header, style="Muted.TLabel", compound="left")
        self.presence.pack(side="left", padx=10)
        ttk.Button(header, text="Close", command=lambda: on_close(self.name)).pack(side="right")

        bottom = ttk.Frame(self)
        bottom.pack(side="bottom", fill="x", pady=(6, 0))
        self.input = tk.Text(bottom, height=3, wrap="word", undo=True, font=look.font,
                             relief="solid", borderwidth=1, padx=6, pady=4,
                             highlightthickness=0)
        self.send_button = ttk.Button(bottom, text="Send", command=self.send)
        self.retry_button = ttk.Button(bottom, text="Retry failed", command=self.retry_failed,
                                       state="disabled")
        self.error = ttk.Label(bottom, style="Error.TLabel")
        self.input.grid(row=0, column=0, rowspan=2, sticky="nsew")
        self.send_button.grid(row=0, column=1, sticky="new", padx=(6, 0))
        self.retry_button.grid(row=1, column=1, sticky="sew", padx=(6, 0))
        self.error.grid(row=2, column=0, columnspan=2, sticky="w")
        bottom.columnconfigure(0, weight=1)
        self.input.bind("<Return>", self._enter)
        self.input.bind("<KP_Enter>", self._enter)
        self.input.bind("<Shift-Return>", self._newline)

        self.history = tk.Text(self, wrap="word", state="disabled", font=look.font,
                               background=PAPER, relief="flat", padx=10, pady=8,
                               spacing1=2, spacing3=4, highlightthickness=0, cursor="arrow")
        scroll = ttk.Scrollbar(self, orient="vertical", command=self.history.yview)
        self.history.configure(yscrollcommand=scroll.set)
        scroll.pack(side="right", fill="y")
        self.history.pack(side="top", fill="both", expand=True)
        indent = look.font.measure("[00:00:00] ")
        self.history.tag_configure("message", lmargin2=indent)
        self.history.tag_configure("continued", lmargin1=indent, lmargin2=indent, spacing1=0)
        self.history.tag_configure("time", foreground=MUTED)
        self.history.tag_configure("me", foreground=ME, font=look.bold)
        self.history.tag_configure("them", foreground=THEM, font=look.bold)
        self.history.tag_configure("state", foreground=MUTED, font=look.small)
        self.history.tag_configure("failed", foreground=ERROR, font=look.small)
        self.history.tag_configure("link", foreground=ERROR, underline=True, font=look.small)
        self.history.tag_configure("day", foreground=MUTED, justify="center", font=look.small,
                                   spacing1=8, spacing3=6)
        self.history.tag_bind("link", "<Button-1>", self._link_clicked)
        self.history.tag_bind("link", "<Enter>", lambda e: self.history.config(cursor="hand2"))
        self.history.tag_bind("link", "<Leave>", lambda e: self.history.config(cursor="arrow"))

        self.show_contact(contact)

    # Updates from the window.

    def show_contact(self, contact: Contact) -> None:
        facts = [presence_text(contact, self._now())]
        if contact.route:
            facts.append(contact.route)
        self.presence.configure(text=" \u00b7 ".join(facts),
                                image=self._look.dots[contact.presence])

    def show(self, message: Message) -> None:
        """Append the message, or update its state if it is already shown."""
        if message.id in self._states:
            self.set_state(message.id, message.state)
            return
        self._states[message.id] = message.state
        self.history.configure(state="normal")
        message_day = day(message.timestamp)
        if message_day != self._last_day:
            self.history.insert("end", f"\u2014 {message_day} \u2014\n", "day")
            self._last_day = message_day
        who = ("You", "me") if message.outgoing else (safe_text(message.contact), "them")
        first, *more = safe_text(message.text).split("\n")
        self.history.insert(
            "end", f"[{clock_time(message.timestamp)}] ", ("message", "time"),
            f"{who[0]}: ", ("message", who[1]),
            first, "message",
        )
        for line in more:  # indented under the first line, like wrapped text
            self.history.insert("end", "\n" + line, "continued")
        if message.outgoing:
            self.history.insert("end", "  ", "message")
            self._insert_state("end", message.id, message.state)
        self.history.insert("end", "\n")
        self.history.configure(state="disabled")
        self.history.see("end")
        self._update_retry_button()

    def set_state(self, message_id: str, state: str) -> bool:
        """Show an outgoing message's new state; False if it is not in this tab."""
        if message_id not in self._states:
            return False
        self._states[message_id] = state
        tag = f"state:{message_id}"
        start, end = self.history.tag_ranges(tag)
        self.history.configure(state="normal")
        self.history.delete(start, end)
        self._insert_state(start, message_id, state)
        self.history.configure(state="disabled")
        self._update_retry_button()
        return True

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

    def retry_failed(self) -> None:
        for message_id, state in list(self._states.items()):
            if state == MessageState.FAILED:
                self._backend.retry(message_id)

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

    # Helpers.

    def _insert_state(self, index, message_id: str, state: str) -> None:
        tag = f"state:{message_id}"
        if state == MessageState.FAILED:
            self.history.insert(index, "failed\u00a0\u2014\u00a0", ("message", "failed", tag),
                                "retry", ("message", "link", tag, f"retry:{message_id}"))
        else:
            self.history.insert(index, STATE_LABELS.get(state, state), ("message", "state", tag))

    def _update_retry_button(self) -> None:
        failed = any(state == MessageState.FAILED for state in self._states.values())
        self.retry_button.configure(state="normal" if failed else "disabled")
