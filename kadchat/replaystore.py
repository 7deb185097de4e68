"""The newest initiation timestamp answered per peer, kept on disk (issue 12, 4).

In memory only, the replay guard forgets what it answered when the client
restarts, and a captured initiation replayed within the time window is then
answered again. As in WireGuard (whitepaper section 5.1, "greatest timestamp
received per peer"), a peer's initiation must carry a newer timestamp than the
last one we answered; entries older than the window are useless (the window
refuses them anyway) and dropped, so the file holds a few lines.
"""

from twisted.logger import Logger

from kadchat.files import atomic_write


class LatestInitiations:
    """peer key -> newest answered timestamp (microseconds, the caller's clock); `path` None: memory only."""

    log = Logger()

    def __init__(self, path=None, keep_seconds=240.0):
        self._path = path
        self._keep_us = int(keep_seconds * 1_000_000)
        self._latest = None

    def is_newer(self, peer_key, timestamp_us):
        return timestamp_us > self._table().get(peer_key, -1)

    def record(self, peer_key, timestamp_us, now):
        table = self._table()
        table[peer_key] = max(timestamp_us, table.get(peer_key, -1))
        horizon = int(now * 1_000_000) - self._keep_us
        self._latest = {k: t for k, t in table.items() if t >= horizon}
        if self._path is None:
            return
        try:
            atomic_write(self._path, b"".join(b"%s %d\n" % (k.hex().encode(), t) for k, t in self._latest.items()))
        except OSError as e:  # the guard still works in memory
            self.log.warn("cannot save {path}: {error}", path=self._path, error=e)

    def _table(self):
        if self._latest is None:
            self._latest = {}
            try:
                with open(self._path or "", "rb") as f:
                    for line in f.read(1 << 20).splitlines():
                        key, timestamp = line.split()
                        self._latest[bytes.fromhex(key.decode())] = int(timestamp)
            except FileNotFoundError:
                pass
            except (OSError, ValueError) as e:  # unreadable: refuse nothing rather than everything
                self.log.warn("ignoring {path}: {error}", path=self._path, error=e)
        return self._latest
