"""The user's own status, online or away: a menu button in the window's top bar."""

from __future__ import annotations

import tkinter as tk
from tkinter import ttk

from kadchat.model import ChatBackend, ContactPresence, MyStatus
from kadchat.ui.gui.style import Look

LABELS = {MyStatus.ONLINE: "Online", MyStatus.AWAY: "Away"}
# Coloured like a contact's dot: green when online, amber when away.
DOTS = {MyStatus.ONLINE: ContactPresence.CONNECTED, MyStatus.AWAY: ContactPresence.AWAY}


class MyStatusMenu(ttk.Menubutton):
    """Shows the status the backend last reported; choosing one asks the backend to set it."""

    def __init__(self, parent, look: Look, backend: ChatBackend):
        super().__init__(parent, compound="left", width=max(map(len, LABELS.values())))
        self._look = look
        self._backend = backend
        self.choice = tk.StringVar(self)
        self.menu = tk.Menu(self, tearoff=False)
        for status, label in LABELS.items():
            self.menu.add_radiobutton(label=label, value=status, variable=self.choice,
                                      command=self._chosen)
        self.configure(menu=self.menu)

    def show(self, status: MyStatus) -> None:
        self.choice.set(status)
        self.configure(text=LABELS[status], image=self._look.dots[DOTS[status]])

    def _chosen(self) -> None:
        # The button changes when the backend's status() call confirms it.
        self._backend.set_my_status(self.choice.get())
