"""Byte counts in words: "512 bytes", "3.4 MB" (powers of 1000, as file managers show)."""


def human_size(n: int) -> str:
    if n < 1000:
        return f"{n} bytes"
    for unit in ("kB", "MB", "GB", "TB"):
        n /= 1000
        if n < 1000 or unit == "TB":
            return f"{n:.1f} {unit}"
