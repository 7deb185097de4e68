"""Which contact (or request) a console command means.

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
