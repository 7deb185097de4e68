"""A private X server for GUI tests, and window screenshots as PNG files.

Screenshots use `xwd` (Debian package x11-apps); the XWD -> PNG conversion is
done here so the tests need no image library.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

REQUIRED_TOOLS = {"Xvfb": "xvfb", "xdotool": "xdotool", "xwd": "x11-apps"}


def require_tools() -> None:
    """Skip when GUI tools are missing; under CI (env CI set) fail instead."""
    missing = [f"{tool} (apt package {package})"
               for tool, package in REQUIRED_TOOLS.items() if shutil.which(tool) is None]
    if missing:
        reason = "GUI tests need " + ", ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(reason + "; CI must install them", pytrace=False)
        pytest.skip(reason)
    try:
        import tkinter  # noqa: F401  (only to check it exists)
    except ImportError:
        reason = "GUI tests need tkinter (apt package python3-tk)"
        if os.environ.get("CI"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)


class Xvfb:
    """`Xvfb -displayfd` picks a free display number and reports it when ready."""

    def __init__(self, width=1280, height=800):
        read_end, write_end = os.pipe()
        self.process = subprocess.Popen(
            ["Xvfb", "-displayfd", str(write_end), "-screen", "0", f"{width}x{height}x24",
             "-nolisten", "tcp"],
            pass_fds=(write_end,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        os.close(write_end)
        number = b""
        with os.fdopen(read_end, "rb") as pipe:
            while not number.endswith(b"\n"):
                chunk = pipe.read(1)
                if not chunk:
                    self.stop()
                    raise RuntimeError("Xvfb exited before reporting its display")
                number += chunk
        self.display = f":{number.decode().strip()}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def screenshot(display: str, window_id: str, path: Path) -> Path:
    """Save the X window `window_id` (e.g. Tk's `wm_frame()`) as a PNG."""
    xwd = subprocess.run(["xwd", "-silent", "-display", display, "-id", window_id],
                         check=True, capture_output=True, timeout=30).stdout
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(xwd_to_png(xwd))
    return path


def xwd_to_png(xwd: bytes) -> bytes:
    """Convert a 24/32-bit TrueColor ZPixmap XWD dump (what Xvfb gives) to PNG."""
    fields = struct.unpack(">25I", xwd[:100])
    header_size, _, pixmap_format, depth, width, height = fields[:6]
    byte_order, bits_per_pixel, bytes_per_line = fields[7], fields[11], fields[12]
    masks, ncolors = fields[14:17], fields[19]
    if (pixmap_format, depth, bits_per_pixel) != (2, 24, 32) or masks != (
            0xFF0000, 0xFF00, 0xFF):
        raise ValueError(f"unsupported XWD layout {fields}")
    # Byte offsets of red, green, blue within each 4-byte pixel.
    offsets = (2, 1, 0) if byte_order == 0 else (1, 2, 3)
    pixels = xwd[header_size + 12 * ncolors:]
    rows = []
    for y in range(height):
        line = pixels[y * bytes_per_line: y * bytes_per_line + 4 * width]
        rgb = bytearray(3 * width)
        for channel, offset in enumerate(offsets):
            rgb[channel::3] = line[offset::4]
        rows.append(b"\x00" + bytes(rgb))  # filter type 0 per row

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"".join(rows), 6))
            + chunk(b"IEND", b""))
