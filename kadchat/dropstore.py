"""What our dead drops need to remember across restarts, in a small SQLite file.

`drops.db` in the data directory (mode 0600): the drops we made for each
contact (the signed item, so a republication is byte for byte the same and
needs no new nonce), where our next drop for a contact goes, and from which
slot on we still read a contact's drops to us. Kept apart from the history
file so that the history's schema stays as it is.
"""

import os
import sqlite3
from dataclasses import dataclass

from kadchat.deaddrop import DATA_SEQ, Position
from kadchat.errors import UserError
from kademlia.items import MutableItem

DROPS_FILE = "drops.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS drops (
    peer BLOB NOT NULL, slot INTEGER NOT NULL, idx INTEGER NOT NULL,
    message_id BLOB NOT NULL, k BLOB NOT NULL, v BLOB NOT NULL, sig BLOB NOT NULL,
    created REAL NOT NULL, last_put REAL,  -- last put that a node accepted, NULL: never
    PRIMARY KEY (peer, slot, idx)
);
CREATE TABLE IF NOT EXISTS cursors (
    peer BLOB PRIMARY KEY,
    write_slot INTEGER, write_index INTEGER,  -- our next drop for the peer goes here
    read_slot INTEGER                         -- we read the peer's drops from this slot on
);
"""


@dataclass(frozen=True)
class Drop:
    peer: bytes
    position: Position
    message_id: bytes
    item: MutableItem
    created: float
    last_put: float | None


class DropStore:
    def __init__(self, path):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            os.close(fd)
            self._db = sqlite3.connect(str(path))
            self._db.execute("PRAGMA synchronous=FULL")
            with self._db:
                self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as e:
            raise UserError(f"cannot use dead drop file {path}: {e}") from None

    def close(self):
        self._db.close()

    # -- ours, for contacts --------------------------------------------------------

    def add(self, peer, message_id, placed, created, next_position):
        """Record a message's drops [(position, item)] and where the next one goes, in one commit."""
        with self._db:
            self._db.executemany(
                "INSERT INTO drops (peer, slot, idx, message_id, k, v, sig, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(peer, p.slot, p.index, message_id, item.k, item.v, item.sig, created) for p, item in placed])
            self._db.execute("INSERT OR IGNORE INTO cursors (peer) VALUES (?)", (peer,))
            self._db.execute("UPDATE cursors SET write_slot = ?, write_index = ? WHERE peer = ?",
                             (next_position.slot, next_position.index, peer))

    def next_position(self, peer):
        row = self._db.execute("SELECT write_slot, write_index FROM cursors WHERE peer = ?", (peer,)).fetchone()
        return Position(*row) if row and row[0] is not None else None

    def drops(self, peer=None):
        """Our drops (for one peer, or all), in position order."""
        where, args = ("WHERE peer = ?", (peer,)) if peer is not None else ("", ())
        rows = self._db.execute(
            f"SELECT peer, slot, idx, message_id, k, v, sig, created, last_put FROM drops {where}"
            " ORDER BY peer, slot, idx", args)
        return [Drop(r[0], Position(r[1], r[2]), r[3], MutableItem(r[4], b"", DATA_SEQ, r[5], r[6]), r[7], r[8])
                for r in rows]

    def message_ids(self, peer):
        return {row[0] for row in self._db.execute("SELECT DISTINCT message_id FROM drops WHERE peer = ?", (peer,))}

    def count(self, peer):
        return self._db.execute("SELECT COUNT(*) FROM drops WHERE peer = ?", (peer,)).fetchone()[0]

    def put_accepted(self, peer, position, when):
        with self._db:
            self._db.execute("UPDATE drops SET last_put = ? WHERE peer = ? AND slot = ? AND idx = ?",
                             (when, peer, position.slot, position.index))

    def forget(self, peer, message_id):
        """A message's drops are done with (acknowledged, delivered directly, or expired)."""
        with self._db:
            self._db.execute("DELETE FROM drops WHERE peer = ? AND message_id = ?", (peer, message_id))

    # -- theirs, for us ------------------------------------------------------------

    def read_slot(self, peer):
        row = self._db.execute("SELECT read_slot FROM cursors WHERE peer = ?", (peer,)).fetchone()
        return row[0] if row else None

    def set_read_slot(self, peer, slot):
        with self._db:
            self._db.execute("INSERT OR IGNORE INTO cursors (peer) VALUES (?)", (peer,))
            self._db.execute("UPDATE cursors SET read_slot = ? WHERE peer = ?", (slot, peer))
