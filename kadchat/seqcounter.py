"""Sequence numbers for our BEP 44 records that only ever go up, across restarts."""

from twisted.logger import Logger

from kadchat.files import atomic_write


class SeqCounter:
    """BEP 44 seq numbers: publish time in microseconds, strictly increasing across restarts.

    The last value is kept in a small file, so a clock that jumps back cannot
    make our new records lose against our own older ones.
    """

    log = Logger()

    def __init__(self, path, now):
        self._path = path
        self._now = now
        self._last = None

    def _load(self):
        try:
            with open(self._path, "rb") as f:
                return int(f.read(32).strip())
        except FileNotFoundError:
            return 0
        except (OSError, ValueError) as e:
            self.log.warn("ignoring unreadable sequence file {path}: {error}", path=self._path, error=e)
            return 0

    def next(self) -> int:
        if self._last is None:
            self._last = self._load()
        value = max(int(self._now() * 1_000_000), self._last + 1)
        atomic_write(self._path, b"%d\n" % value)
        self._last = value
        return value
