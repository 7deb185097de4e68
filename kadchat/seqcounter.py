"""Sequence numbers for our BEP 44 records that only ever go up, across restarts."""

from twisted.logger import Logger

from kadchat.errors import UserError
from kadchat.files import atomic_write
from kademlia.items import MAX_SEQ


class SeqCounter:
    """BEP 44 seq numbers: publish time in microseconds, strictly increasing across restarts.

    The last value is kept in a small file, so a clock that jumps back cannot
    make our new records lose against our own older ones. Call `check()` at
    start, so that a file no newer record can follow stops the client there
    rather than silently ending publication.
    """

    log = Logger()

    def __init__(self, path, now):
        self._path = path
        self._now = now
        self._last = None

    def check(self) -> list:
        """Read the file; returns one-line warnings, raises UserError if it cannot be used.

        A file that holds no number is reset (a warning): the clock alone then
        orders our records, as on a first start. At BEP 44's largest seq,
        2**63-1, no newer record can be signed, and starting again lower loses
        against our own records until they expire from the DHT: the user
        decides.
        """
        try:
            with open(self._path, "rb") as f:
                text = f.read(32).strip()
            if not text.isdigit():
                self._store(0)
                return [f"{self._path} did not hold a sequence number; it starts again from the clock"]
        except FileNotFoundError:
            self._last = 0
            return []
        except OSError as e:
            raise UserError(f"cannot use {self._path}: {e.strerror}") from None
        if int(text) >= MAX_SEQ:
            raise UserError(f"{self._path} has reached BEP 44's largest sequence number (2**63-1), so no newer "
                            f"presence record can be signed; delete it to start again from the clock")
        self._last = int(text)
        return []

    def next(self) -> int:
        """The next seq, stored before it is returned; ValueError when none is left, OSError if not stored."""
        if self._last is None:  # check() was not called at start
            try:
                warnings = self.check()
            except UserError as e:
                raise ValueError(str(e)) from None
            for warning in warnings:
                self.log.warn("{warning}", warning=warning)
        value = max(int(self._now() * 1_000_000), self._last + 1)
        if value > MAX_SEQ:
            raise ValueError(f"no sequence number left after {self._last} (BEP 44 allows up to 2**63-1)")
        self._store(value)
        return value

    def _store(self, value):
        atomic_write(self._path, b"%d\n" % value)
        self._last = value
