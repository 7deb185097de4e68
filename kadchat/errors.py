"""Errors meant for the person at the keyboard."""


class UserError(Exception):
    """A problem the user can fix; its message is printed as one line, as is."""
