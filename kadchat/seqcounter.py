"""Sequence numbers for our BEP 44 presence records: increasing within an epoch, across restarts."""

from hashlib import blake2b

from twisted.logger import Logger

from kadchat.errors import UserError
from kadchat.files import atomic_write
from kademlia.items import MAX_SEQ

# Every epoch's record has its own key (kadchat.presence), so seq only has to
# grow within an epoch. A seq that showed the publish time, or grew across
# epochs, would link one epoch's record to the next (issue 12, 3). Values
# start above 2**60, above any seq of the former scheme (microseconds since
# 1970), so records of a client that upgraded mid-epoch still win.
_FLOOR = 2**60
_OFFSET_RANGE = 2**56
EPOCHS_KEPT = 4  # the file remembers this many recent epochs


class SeqCounter:
    """seq for epoch e = a secret offset of e + microseconds since one epoch before e began.

    (One epoch before: the next epoch's record is published ahead of it.) The
    offset, a keyed hash of the epoch, hides where in the epoch we published
    and makes values of different epochs unrelated. The last value of each
    recent epoch is kept in a small file, so a restart or a clock that jumps
    back cannot make a new record lose against our own older one. Call
    `check()` at start, so that an unreadable file stops the client there.
    """

    log = Logger()

    def __init__(self, path, now, secret, epoch_seconds=300):
        self._path = path
        self._now = now
        self._secret = blake2b(secret, digest_size=32, person=b"kadchat-seq").digest()
        self._epoch_seconds = epoch_seconds
        self._last = None  # epoch -> last seq given

    def check(self) -> list:
        """Read the file; returns one-line warnings, raises UserError if it cannot be used.

        A file that holds no "epoch seq" lines is reset (a warning): its
        values can only matter for the current epoch, and the clock then
        orders them. A lone number is the former format, and ignored.
        """
        try:
            with open(self._path, "rb") as f:
                lines = f.read(4096).split(b"\n")
        except FileNotFoundError:
            self._last = {}
            return []
        except OSError as e:
            raise UserError(f"cannot use {self._path}: {e.strerror}") from None
        rows = [line.split() for line in lines if line.strip()]
        if len(rows) == 1 and len(rows[0]) == 1 and rows[0][0].isdigit():
            self._last = {}
            return []
        if not all(len(row) == 2 and row[0].isdigit() and row[1].isdigit() for row in rows):
            self._store({})
            return [f"{self._path} did not hold sequence numbers; they start again from the clock"]
        self._last = {int(epoch): int(value) for epoch, value in rows}
        return []

    def next(self, epoch) -> int:
        """The next seq for `epoch`, stored before it is returned; OSError if not stored."""
        if self._last is None:  # check() was not called at start
            try:
                warnings = self.check()
            except UserError as e:
                raise ValueError(str(e)) from None
            for warning in warnings:
                self.log.warn("{warning}", warning=warning)
        since = max(0, self._now() - (epoch - 1) * self._epoch_seconds)
        value = max(self.offset(epoch) + int(since * 1_000_000), self._last.get(epoch, 0) + 1)
        if value > MAX_SEQ:
            raise ValueError(f"no sequence number left for epoch {epoch}")
        recent = sorted(self._last.items())[-(EPOCHS_KEPT - 1):]
        self._store({**dict(recent), epoch: value})
        return value

    def offset(self, epoch):
        """Where epoch `epoch`'s numbers start: only we can tell."""
        digest = blake2b(epoch.to_bytes(8, "big"), digest_size=8, key=self._secret).digest()
        return _FLOOR + int.from_bytes(digest, "big") % _OFFSET_RANGE

    def _store(self, last):
        atomic_write(self._path, b"".join(b"%d %d\n" % row for row in sorted(last.items())))
        self._last = last
