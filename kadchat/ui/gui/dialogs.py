"""The dialogs: add a contact, show my card, rename a contact, confirm a removal or block.

Neither grabs the pointer or runs a nested event loop: the reactor keeps
running underneath (the window lives in the Twisted reactor via tksupport).
"""

from __future__ import annotations

import tkinter as tk
from tkinter import ttk
from typing import Callable

from kadchat.errors import UserError
from kadchat.model import ChatBackend, Contact
from kadchat.ui.gui.style import Look
from kadchat.ui.uitext import one_line


class _Dialog(tk.Toplevel):
    def __init__(self, root: tk.Misc, look: Look, title: str):
        super().__init__(root)
        look.painted(self, lambda: self.configure(background=look.colours.background))
        self.title(title)
        self.transient(root)
        self.geometry(f"+{root.winfo_rootx() + 80}+{root.winfo_rooty() + 60}")
        self.resizable(False, False)
        self.body = ttk.Frame(self, padding=16)
        self.body.pack(fill="both", expand=True)
        self.bind("<Escape>", lambda e: self.destroy())

    def _card_box(self, look: Look) -> tk.Text:
        box = tk.Text(self.body, width=52, height=4, wrap="char", padx=6, pady=4)
        look.painted(box, lambda: box.configure(**look.text_widget_options()))
        return box

    def _buttons(self, *buttons: tuple[str, Callable[[], None]]) -> list[ttk.Button]:
        row = ttk.Frame(self.body)
        row.pack(side="bottom", fill="x", pady=(12, 0))
        made = []
        for number, (text, command) in enumerate(reversed(buttons)):
            style = "Accent.TButton" if number == len(buttons) - 1 else "TButton"  # the first: what to do
            made.append(ttk.Button(row, text=text, command=command, style=style))
            made[-1].pack(side="right", padx=(6, 0))
        return made[::-1]


class AddContactDialog(_Dialog):
    """Asks for a card and a name; the backend's UserError is shown inline."""

    def __init__(self, root: tk.Misc, look: Look, backend: ChatBackend,
                 on_added: Callable[[Contact], None]):
        super().__init__(root, look, "Add contact")
        self._backend = backend
        self._on_added = on_added
        ttk.Label(self.body, text="Paste the contact card you were given:").pack(anchor="w")
        self.card = self._card_box(look)
        self.card.pack(fill="x", pady=(4, 10))
        name_row = ttk.Frame(self.body)
        name_row.pack(fill="x")
        ttk.Label(name_row, text="Name:").pack(side="left")
        self.name = ttk.Entry(name_row, name="name")  # (named: the e2e tests find it by path)
        self.name.pack(side="left", fill="x", expand=True, padx=(8, 0))
        ttk.Label(self.body, text="A note for them, should they not have you yet (optional):"
                  ).pack(anchor="w", pady=(10, 0))
        self.note = ttk.Entry(self.body, name="note")
        self.note.pack(fill="x", pady=(4, 0))
        self.error = ttk.Label(self.body, style="Error.TLabel", wraplength=420)
        self.error.pack(anchor="w", pady=(8, 0))
        self.add_button, _ = self._buttons(("Add", self.add), ("Cancel", self.destroy))
        for entry in (self.name, self.note):
            entry.bind("<Return>", lambda e: self.add())
        self.card.focus_set()

    def add(self) -> None:
        try:
            contact = self._backend.add_contact(self.card.get("1.0", "end-1c").strip(),
                                                self.name.get().strip(), self.note.get().strip())
        except UserError as e:
            self.error.configure(text=str(e))
            return
        self.destroy()
        self._on_added(contact)


class MyCardDialog(_Dialog):
    """Shows the user's own card with a button that copies it."""

    def __init__(self, root: tk.Misc, look: Look, card: str):
        super().__init__(root, look, "My card")
        self._card = card
        ttk.Label(self.body, text="Give this card to the people you want to chat with:"
                  ).pack(anchor="w")
        self.text = self._card_box(look)
        self.text.insert("1.0", card)
        self.text.configure(state="disabled")
        self.text.pack(fill="x", pady=(4, 0))
        self.copied = ttk.Label(self.body, style="Muted.TLabel")
        self.copied.pack(anchor="w", pady=(8, 0))
        self.copy_button, _ = self._buttons(("Copy to clipboard", self.copy),
                                            ("Close", self.destroy))

    def copy(self) -> None:
        self.clipboard_clear()
        self.clipboard_append(self._card)
        self.copied.configure(text="Copied to the clipboard.")


class RenameDialog(_Dialog):
    """A new local name for a contact; the backend's UserError is shown inline."""

    def __init__(self, root: tk.Misc, look: Look, backend: ChatBackend, name: str,
                 on_renamed: Callable[[str, Contact], None]):
        super().__init__(root, look, f"Rename {one_line(name)}")
        self._backend = backend
        self._old = name
        self._on_renamed = on_renamed
        ttk.Label(self.body, text="The name only you see for this contact:").pack(anchor="w")
        self.name = ttk.Entry(self.body, width=40)
        self.name.insert(0, name)
        self.name.select_range(0, "end")
        self.name.pack(fill="x", pady=(4, 0))
        self.error = ttk.Label(self.body, style="Error.TLabel", wraplength=360)
        self.error.pack(anchor="w", pady=(8, 0))
        self.rename_button, _ = self._buttons(("Rename", self.rename), ("Cancel", self.destroy))
        self.name.bind("<Return>", lambda e: self.rename())
        self.name.focus_set()

    def rename(self) -> None:
        try:
            contact = self._backend.rename_contact(self._old, self.name.get().strip())
        except UserError as e:
            self.error.configure(text=str(e))
            return
        self.destroy()
        self._on_renamed(self._old, contact)


class ConfirmDialog(_Dialog):
    """A question with the action's own word on the button (no nested event loop)."""

    def __init__(self, root: tk.Misc, look: Look, title: str, question: str, action: str,
                 on_yes: Callable[[], None]):
        super().__init__(root, look, title)
        self._on_yes = on_yes
        ttk.Label(self.body, text=question, wraplength=380, justify="left").pack(anchor="w")
        self.error = ttk.Label(self.body, style="Error.TLabel", wraplength=380)
        self.error.pack(anchor="w", pady=(8, 0))
        self.yes_button, _ = self._buttons((action, self.yes), ("Cancel", self.destroy))

    def yes(self) -> None:
        try:
            self._on_yes()
        except UserError as e:
            self.error.configure(text=str(e))
            return
        self.destroy()
