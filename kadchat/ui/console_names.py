"""Which contact (or request) a console command means, and how Tab completes one.

Names may have spaces ("Ben Big"). A command names one by, in this order:
quotes (`"Ben Big" hi`: what is inside), the longest whole name the text
starts with (`Ben Big hi`), or the start of exactly one name (`Be hi`),
letter case ignored where that leaves one name.
"""

from __future__ import annotations

from collections.abc import Iterable

from kadchat.errors import UserError
from kadchat.ui.uitext import one_line


def split_name(text: str, names: Iterable[str]) -> tuple[str, str]:
    """(the name `text` starts with, the rest of `text` after one space, verbatim).

    An unknown name comes back as typed (its first word), for the backend to refuse."""
    names = list(names)
    if text.startswith('"'):
        typed, quote, rest = text[1:].partition('"')
        if not quote:
            raise UserError('a quote (") is not closed')
        return resolve(typed, names) or typed, rest.removeprefix(" ")
    whole = _longest_whole_name(text, names)
    if whole is not None:
        return whole, text[len(whole):].removeprefix(" ")
    word, _, rest = text.partition(" ")
    return _unique_prefix(word, names) or word, rest


# The commands whose first argument is a contact's name, a requester's, or either.
CONTACT_COMMANDS = ("/open", "/msg", "/history", "/rename", "/remove")
REQUEST_COMMANDS = ("/accept", "/ignore")


def completions(line: str, commands: Iterable[str], contacts: list[str], requests: list[str]) -> list[str]:
    """What the last word(s) of `line`, the text before the cursor, may be completed to:
    a command while the first word is typed, then the name a command takes."""
    command, space, typed = line.partition(" ")
    if not space:
        return [c for c in commands if c.startswith(command)] if command.startswith("/") else []
    if command == "/block":
        names = contacts + requests
    else:
        names = requests if command in REQUEST_COMMANDS else contacts if command in CONTACT_COMMANDS else []
    return sorted((n for n in names if n.casefold().startswith(typed.casefold())), key=str.casefold)


def unquote(text: str) -> str:
    """`text` without the quotes around it, if it has them."""
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text


def resolve(typed: str, names: Iterable[str]) -> str | None:
    """The one name `typed` (the whole of it, quotes allowed) means, or None."""
    names = list(names)
    typed = unquote(typed)
    if typed in names:
        return typed
    same = [n for n in names if n.casefold() == typed.casefold()]
    if len(same) == 1:
        return same[0]
    return _unique_prefix(typed, names)


def _longest_whole_name(text: str, names: list[str]) -> str | None:
    for exact in (True, False):
        fits = [n for n in names if _starts_with_word(text, n, exact)]
        if fits:
            return max(fits, key=len)
    return None


def _starts_with_word(text: str, name: str, exact: bool) -> bool:
    head = text[:len(name)]
    same = head == name if exact else head.casefold() == name.casefold()
    return bool(name) and same and (len(text) == len(name) or text[len(name)] == " ")


def _unique_prefix(typed: str, names: list[str]) -> str | None:
    if not typed:
        return None
    fits = [n for n in names if n.casefold().startswith(typed.casefold())]
    if len(fits) > 1:
        listed = ", ".join(one_line(n) for n in sorted(fits, key=str.casefold))
        raise UserError(f"{one_line(typed)!r} could be {listed}: type more of the name, or quote it")
    return fits[0] if fits else None
