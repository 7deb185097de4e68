"""File names from strangers made safe, and where received files go.

A name in an offer is only a suggestion: path separators, `..`, control and
format characters (bidi overrides included) and leading dots are neutralised,
names Windows reserves get an underscore, and overlong names are cut to
MAX_NAME_BYTES of UTF-8 keeping the extension. A file never overwrites
another: `name (1).ext`, `name (2).ext`... claimed with O_EXCL, so two
transfers finishing at once cannot pick the same name.
"""

import os
import unicodedata

MAX_NAME_BYTES = 200  # well under the 255 of common file systems, room for " (123)"
_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}
FALLBACK = "file"


def safe_name(offered: str) -> str:
    """A plain file name (no directories, nothing hidden, nothing invisible) for `offered`."""
    cleaned = "".join("_" if ch in "/\\:" or unicodedata.category(ch)[0] in "CZ" and ch != " " else ch
                      for ch in unicodedata.normalize("NFC", offered))
    cleaned = cleaned.strip(" ._") or FALLBACK  # no ".." / ".hidden" / "name." / blank
    stem, ext = _split(cleaned)
    if stem.upper() in _RESERVED:
        stem = "_" + stem
    if len(ext.encode("utf-8")) > 20:  # an "extension" that long is part of the name
        stem, ext = stem + ext, ""
    return _cut(stem, MAX_NAME_BYTES - len(ext.encode("utf-8"))) + ext


def claim_path(folder: str, name: str) -> str:
    """Create an empty file for `name` in `folder` that overwrites nothing; return its path."""
    stem, ext = _split(name)
    for n in range(0, 10_000):
        candidate = name if n == 0 else f"{stem} ({n}){ext}"
        path = os.path.join(folder, candidate)
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            return path
        except FileExistsError:
            continue
    raise OSError(f"no free name for {name!r} in {folder}")


def default_downloads(environ=os.environ) -> str:
    """$XDG_DOWNLOAD_DIR/kadchat if set, else ~/Downloads/kadchat."""
    base = environ.get("XDG_DOWNLOAD_DIR") or os.path.join(os.path.expanduser("~"), "Downloads")
    return os.path.join(base, "kadchat")


def _split(name):
    stem, ext = os.path.splitext(name)
    return (stem, ext) if stem else (name, "")


def _cut(text, limit):
    data = text.encode("utf-8")[:max(limit, 1)]
    return data.decode("utf-8", "ignore") or FALLBACK
