"""Small pictures of received and sent images, made by Pillow off the Tk thread.

Only files named like an image (png, jpg, gif, webp) that Pillow can open are
drawn; a file over MAX_BYTES or a picture over MAX_PIXELS is never decoded
(a decompression bomb: a few kB on the wire, gigabytes once unpacked).
"""

from __future__ import annotations

import os
import tkinter as tk
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable

from PIL import Image, ImageTk

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp")
MAX_BYTES = 50_000_000
MAX_PIXELS = 40_000_000
SIZE = (240, 180)  # px at most, the aspect kept
POLL = 25  # ms between looks at a thumbnail being made


def looks_like_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES)


def thumbnail(path: str) -> Image.Image | None:
    """The picture at `path` shrunk to SIZE, or None if it is not one Pillow may safely open."""
    try:
        if not looks_like_image(path) or os.path.getsize(path) > MAX_BYTES:
            return None
        with Image.open(path) as image:  # reads the header only
            width, height = image.size
            if width * height > MAX_PIXELS:
                return None
            image.draft("RGB", SIZE)  # JPEG: decode at a fraction of the size
            image.thumbnail(SIZE)
            return image.convert("RGBA")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None


class Thumbnailer:
    """`request(widget, path, done)` calls `done(PhotoImage or None)` later, in Tk's thread."""

    def __init__(self):
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="thumbnails")

    def request(self, widget: tk.Misc, path: str, done: Callable[[ImageTk.PhotoImage | None], None]) -> None:
        future = self._pool.submit(thumbnail, path)
        widget.after(POLL, self._check, widget, future, done)

    def _check(self, widget: tk.Misc, future: Future, done) -> None:
        if not widget.winfo_exists():
            return
        if not future.done():
            widget.after(POLL, self._check, widget, future, done)
            return
        image = future.result()
        done(ImageTk.PhotoImage(image, master=widget) if image is not None else None)  # Tk objects: Tk's thread

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
