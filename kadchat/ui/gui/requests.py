"""Contact requests: people who have our card and asked to be added, each
with Accept, Ignore and Block, above the chat list while any are waiting."""

from __future__ import annotations

from typing import Callable

from tkinter import ttk

from kadchat.model import ContactRequest
from kadchat.ui.gui.style import Look
from kadchat.ui.uitext import one_line

ANSWERS = (("Accept", "accept"), ("Ignore", "ignore"), ("Block", "block"))


class RequestsPanel(ttk.Frame):
    """`on_answer(answer, name)` with answer one of ANSWERS' second words."""

    def __init__(self, parent, look: Look, on_answer: Callable[[str, str], None]):
        super().__init__(parent)
        self._look = look
        self._on_answer = on_answer
        self.heading = ttk.Label(self, style="Muted.TLabel")
        self.heading.pack(anchor="w", pady=(0, 4))
        self.cards: dict[str, ttk.Frame] = {}  # name -> its card, in the order shown
        self.buttons: dict[tuple[str, str], ttk.Button] = {}  # (name, answer) -> button

    def show(self, requests: list[ContactRequest]) -> None:
        for card in self.cards.values():
            card.destroy()
        self.cards.clear()
        self.buttons.clear()
        self.heading.configure(text="Contact requests" if len(requests) != 1 else "Contact request")
        for request in requests:
            self.cards[request.name] = self._card(request)

    def _card(self, request: ContactRequest) -> ttk.Frame:
        card = ttk.Frame(self, padding=(4, 2, 4, 8))
        card.pack(fill="x")
        ttk.Label(card, text=f"{one_line(request.name)} wants to chat", font=self._look.bold
                  ).pack(anchor="w")
        if request.note:
            ttk.Label(card, text=f"\u201c{one_line(request.note)}\u201d", style="Muted.TLabel",
                      wraplength=260).pack(anchor="w", pady=(2, 0))
        ttk.Separator(card).pack(side="bottom", fill="x", pady=(8, 0))
        row = ttk.Frame(card)
        row.pack(fill="x", pady=(6, 0))
        for label, answer in ANSWERS:
            button = ttk.Button(row, text=label, style="Accent.TButton" if answer == "accept" else "TButton",
                                command=lambda a=answer: self._on_answer(a, request.name))
            button.pack(side="left", padx=(0, 6))
            self.buttons[request.name, answer] = button
        return card
