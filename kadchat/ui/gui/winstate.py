"""The window's size and place, remembered across runs in `window.json`.

A small JSON file in the data directory: {"geometry": "WxH+X+Y"}. A damaged
or missing file gives the default size; a size bigger than the screen is cut
to fit and a place off the screen is dropped.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

WINDOW_FILE = "window.json"
DEFAULT_SIZE = (1100, 720)
MIN_SIZE = (640, 460)
_GEOMETRY = re.compile(r"(\d+)x(\d+)([+-]-?\d+)([+-]-?\d+)")


def initial_geometry(path, screen: tuple[int, int]) -> str:
    """What to give `wm geometry` at start; `path` a str or Path, or None."""
    saved = _read(Path(path) if path is not None else None)
    match = _GEOMETRY.fullmatch(saved) if saved else None
    if match is None:
        return "x".join(map(str, _fit(DEFAULT_SIZE, screen)))
    width, height = _fit((int(match[1]), int(match[2])), screen)
    x, y = int(match[3]), int(match[4])
    if 0 <= x < screen[0] - 100 and 0 <= y < screen[1] - 100:
        return f"{width}x{height}+{x}+{y}"
    return f"{width}x{height}"


def save_geometry(path, geometry: str) -> None:
    """Written whole or not at all (a temporary file renamed over the old one)."""
    if path is None or not _GEOMETRY.fullmatch(geometry):
        return
    path = Path(path)
    temporary = path.with_name(path.name + ".tmp")
    try:
        temporary.write_text(json.dumps({"geometry": geometry}) + "\n", encoding="utf-8")
        os.replace(temporary, path)
    except OSError:
        pass  # a read-only data directory costs only the remembered size


def _read(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8")).get("geometry")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def _fit(size: tuple[int, int], screen: tuple[int, int]) -> tuple[int, int]:
    """At least MIN_SIZE, at most 95% of the screen (less the panels and title bar)."""
    return tuple(max(low, min(want, int(have * 0.95) - margin))
                 for want, have, low, margin in zip(size, screen, MIN_SIZE, (0, 40)))
