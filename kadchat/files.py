"""The user's text files: identity.txt, contacts.txt, bootstrap.txt, blocked.txt.

Formats (UTF-8; ``#`` starts a comment line; blank lines are ignored):

- ``contacts.txt``: one contact per line, ``CARD NAME``; the name is the rest
  of the line, trimmed, and may contain spaces.
- ``bootstrap.txt``: one ``HOST PORT`` pair per line.
- ``blocked.txt``: one card per line, then the name it had (for the user only).
- ``identity.txt``: the user's own ``CARD NAME`` line, written by kadchat,
  in the contacts.txt format so it can be pasted there as is.

The list parsers never give up on a whole file for one bad line: they return
the good entries and one ``file:line: problem`` message per bad line.
"""

import ipaddress
import os
import re
import tempfile
import unicodedata
from dataclasses import dataclass

from kadchat.cards import decode_card, encode_card
from kadchat.errors import UserError

MAX_NAME_CHARS = 64
CONTROL_CATEGORIES = ("Cc", "Cf", "Zl", "Zp")  # what a one-line name or note may not hold
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?)+$")


@dataclass(frozen=True)
class ContactEntry:
    public_key: bytes
    name: str
    line: int


def atomic_write(path, data: bytes, mode: int = 0o600) -> None:
    """Replace `path` with `data` so that readers see the old or the new file, never half of one.

    The new file gets `mode` whatever the umask: private unless asked otherwise."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _sync_directory(directory)  # the rename itself survives a power cut


def _sync_directory(directory):
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def validate_name(name: str) -> str:
    """The trimmed name, or UserError saying what is wrong with it."""
    name = name.strip()
    if not name:
        raise UserError("a name cannot be empty")
    if len(name) > MAX_NAME_CHARS:
        raise UserError(f"name too long (at most {MAX_NAME_CHARS} characters)")
    if name.startswith("#"):
        raise UserError("a name cannot start with '#'")
    if any(unicodedata.category(c) in CONTROL_CATEGORIES for c in name):
        raise UserError("a name cannot contain control characters")
    return name


def _read_lines(path):
    """(line number, text or None if not UTF-8) for each line; no lines if the file is missing."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        return []
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror}") from None
    lines = []
    for number, chunk in enumerate(raw.split(b"\n"), start=1):
        try:
            text = chunk.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError:
            text = None
        if number == 1 and text is not None:
            text = text.removeprefix("\ufeff")  # editors that write a byte-order mark
        lines.append((number, text))
    return lines


def _entries(path):
    """(line number, stripped text) of meaningful lines, plus problems for undecodable ones."""
    entries, problems = [], []
    for number, text in _read_lines(path):
        if text is None:
            problems.append(f"{path}:{number}: not UTF-8 text")
            continue
        text = text.strip()
        if text and not text.startswith("#"):
            entries.append((number, text))
    return entries, problems


def _parse_contact_line(text):
    parts = text.split(None, 1)
    if len(parts) < 2:
        raise UserError("expected 'CARD NAME'")
    return decode_card(parts[0]), validate_name(parts[1])


def parse_contacts(path):
    """(list of ContactEntry, list of problems) from a contacts.txt."""
    entries, problems = _entries(path)
    contacts, by_key, by_name = [], {}, {}
    for number, text in entries:
        try:
            public_key, name = _parse_contact_line(text)
        except UserError as e:
            problems.append(f"{path}:{number}: {e}")
            continue
        if public_key in by_key:
            problems.append(f"{path}:{number}: same card as line {by_key[public_key]}, ignored")
            continue
        if name.casefold() in by_name:
            problems.append(f"{path}:{number}: name {name!r} already used on line {by_name[name.casefold()]}, ignored")
            continue
        by_key[public_key] = by_name[name.casefold()] = number
        contacts.append(ContactEntry(public_key, name, number))
    return contacts, problems


def parse_cards(path):
    """(list of public keys, list of problems) from a file of one card per line (blocked.txt);
    whatever follows the card on its line is the user's note and is ignored."""
    entries, problems = _entries(path)
    keys = []
    for number, text in entries:
        try:
            keys.append(decode_card(text.split()[0]))
        except UserError as e:
            problems.append(f"{path}:{number}: {e}")
    return keys, problems


def parse_host(host: str) -> str:
    """An IP address (normalised) or a host name; UserError otherwise."""
    host = host.strip()
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        pass
    if _HOSTNAME.match(host):
        return host
    raise UserError(f"bad host {host!r}")


def _parse_port(text):
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise UserError(f"bad port {text!r} (1-65535)")
    return int(text)


def parse_bootstrap(path):
    """(list of (host, port), list of problems) from a bootstrap.txt."""
    entries, problems = _entries(path)
    addresses, seen = [], {}
    for number, text in entries:
        parts = text.split()
        try:
            if len(parts) != 2:
                raise UserError("expected 'HOST PORT'")
            address = (parse_host(parts[0]), _parse_port(parts[1]))
        except UserError as e:
            problems.append(f"{path}:{number}: {e}")
            continue
        if address in seen:
            problems.append(f"{path}:{number}: same address as line {seen[address]}, ignored")
            continue
        seen[address] = number
        addresses.append(address)
    return addresses, problems


def append_contact(path, card: str, name: str) -> ContactEntry:
    """Add a contact line at the end of contacts.txt, keeping the user's lines byte for byte.

    Raises UserError for a bad card or name, or if the card or name is already there.
    """
    public_key, name = decode_card(card), validate_name(name)
    contacts, _ = parse_contacts(path)
    for contact in contacts:
        if contact.public_key == public_key:
            raise UserError(f"{path}:{contact.line}: this card is already there, as {contact.name!r}")
        if contact.name.casefold() == name.casefold():
            raise UserError(f"{path}:{contact.line}: the name {contact.name!r} is already used")
    try:
        with open(path, "rb") as f:
            old = f.read()
    except FileNotFoundError:
        old = b""
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror}") from None
    if old and not old.endswith(b"\n"):
        old += b"\n"
    line = f"{encode_card(public_key)} {name}\n".encode("utf-8")
    try:
        atomic_write(path, old + line)
    except OSError as e:
        raise UserError(f"cannot write {path}: {e.strerror}") from None
    return ContactEntry(public_key, name, old.count(b"\n") + 1)


def rewrite_contact(path, public_key: bytes, new_name: str | None) -> None:
    """Rename (`new_name`) or remove (None) the contact line of `public_key`, keeping every
    other line byte for byte; the file is replaced atomically. UserError if it can't be."""
    try:
        with open(path, "rb") as f:
            chunks = f.read().split(b"\n")
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror}") from None
    for i, chunk in enumerate(chunks):
        text = chunk.decode("utf-8", errors="replace").removeprefix("\ufeff").strip()
        if not text or text.startswith("#"):
            continue
        try:
            key, _ = _parse_contact_line(text)
        except UserError:
            continue
        if key == public_key:
            break
    else:
        raise UserError(f"{path}: no line for that card")
    if new_name is None:
        del chunks[i]
    else:
        ending = b"\r" if chunks[i].endswith(b"\r") else b""
        chunks[i] = f"{encode_card(public_key)} {validate_name(new_name)}".encode("utf-8") + ending
    try:
        atomic_write(path, b"\n".join(chunks))
    except OSError as e:
        raise UserError(f"cannot write {path}: {e.strerror}") from None


def identity_text(public_key: bytes, name: str) -> str:
    """The contents kadchat writes to identity.txt."""
    return (
        "# Your kadchat identity. Give the line below to your contacts: they add it\n"
        "# to their contacts.txt. Your private key is identity.key: never share it.\n"
        f"{encode_card(public_key)} {validate_name(name)}\n"
    )


def parse_identity(path):
    """(public key, name) from identity.txt; UserError with file:line if it is not exactly one good entry."""
    entries, problems = _entries(path)
    if problems:
        raise UserError(problems[0])
    if not entries:
        raise UserError(f"{path}: no 'CARD NAME' line found")
    if len(entries) > 1:
        raise UserError(f"{path}:{entries[1][0]}: only one 'CARD NAME' line is allowed")
    number, text = entries[0]
    try:
        return _parse_contact_line(text)
    except UserError as e:
        raise UserError(f"{path}:{number}: {e}") from None
