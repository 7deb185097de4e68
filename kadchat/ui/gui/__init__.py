"""The Tk user interface; `ChatWindow` is the whole of its public face."""

from kadchat.ui.gui.window import ChatWindow

__all__ = ["ChatWindow"]
