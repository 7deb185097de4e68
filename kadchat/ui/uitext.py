"""Text shown by both user interfaces: times, addresses, status, peer text.

Kept apart from the GUI so the console runs where Tk is not installed.
"""

from __future__ import annotations

import re
import time

from kadchat.model import Contact, ContactPresence, Status

# Control characters (C0 except tab/newline, DEL, C1) and bidi overrides: a
# peer's text must not move a terminal's cursor or reorder what is shown.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_LINE_BREAK = re.compile("\r\n|\r|\n")


def safe_text(text: str) -> str:
    """`text` with line breaks kept and every other control character replaced."""
    return _UNSAFE.sub("\ufffd", _LINE_BREAK.sub("\n", text))


def one_line(text: str) -> str:
    """`text` on one line: line breaks shown as " / "."""
    return safe_text(text).replace("\n", " / ")


def clock_time(timestamp: float) -> str:
    """HH:MM:SS in local time."""
    return time.strftime("%H:%M:%S", time.localtime(timestamp))


def date_and_minute(timestamp: float) -> str:
    """YYYY-MM-DD HH:MM in local time."""
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp))


def day(timestamp: float) -> str:
    """The local date, e.g. "Mon 3 May 2027"."""
    t = time.localtime(timestamp)
    return time.strftime(f"%a {t.tm_mday} %b %Y", t)


# What each presence is called in both UIs and in the console's "* NAME is ..." lines.
PRESENCE_WORDS = {
    ContactPresence.CONNECTED: "connected",
    ContactPresence.AWAY: "away",
    ContactPresence.SEEN: "in the network",
    ContactPresence.OFFLINE: "offline",
}


def presence_text(contact: Contact, now: float) -> str:
    """The contact's presence word, or when an offline contact was last seen."""
    if contact.presence != ContactPresence.OFFLINE or contact.last_seen is None:
        return PRESENCE_WORDS[contact.presence]
    return f"last seen {when(contact.last_seen, now)}"


def when(timestamp: float, now: float) -> str:
    """HH:MM today, the day and month this year, else the date."""
    then, today = time.localtime(timestamp), time.localtime(now)
    if then[:3] == today[:3]:
        return time.strftime("%H:%M", then)
    if then.tm_year == today.tm_year:
        return time.strftime(f"{then.tm_mday} %b", then)
    return time.strftime("%Y-%m-%d", then)


def address_text(address: tuple[str, int] | None) -> str:
    if address is None:
        return "unknown"
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def status_parts(status: Status) -> tuple[str, str, str]:
    """The three network facts as short labelled phrases."""
    return (
        f"DHT peers: {status.dht_peers}",
        f"External address: {address_text(status.external_address)}",
        f"Reachability: {status.reachability}",
    )
