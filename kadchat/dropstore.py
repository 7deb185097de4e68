"""What our dead drops need to remember across restarts, in a small SQLite file.

`drops.db` in the data directory (mode 0600): the drops we made for each
contact (the signed item, so a republication is byte for byte the same and
needs no new nonce), which of them carries our presence secret (a SECRET
drop, at most one per contact), where our next drop for a contact goes, and
from which slot on we still read a contact's drops to us. Kept apart from the history
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
CREATE TABLE IF NOT EXISTS secret_drops (  -- the drop (by its id) that hands the peer our presence secret
    peer BLOB PRIMARY KEY, message_id BLOB NOT NULL
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
    secret: bool  # a SECRET drop (its message_id: deaddrop.secret_id), not a message's fragment


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

    def add(self, peer, message_id, placed, created, next_position, secret=False):
        """Record a message's drops [(position, item)] (or, `secret`, the one SECRET drop for
        `peer`) and where the next one goes, in one commit."""
        with self._db:
            if secret:
                self._db.execute("INSERT INTO secret_drops (peer, message_id) VALUES (?, ?)", (peer, message_id))
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
        where, args = ("WHERE d.peer = ?", (peer,)) if peer is not None else ("", ())
        rows = self._db.execute(
            "SELECT d.peer, slot, idx, d.message_id, k, v, sig, created, last_put, s.peer IS NOT NULL FROM drops d"
            " LEFT JOIN secret_drops s ON s.peer = d.peer AND s.message_id = d.message_id"
            f" {where} ORDER BY d.peer, slot, idx", args)
        return [Drop(r[0], Position(r[1], r[2]), r[3], MutableItem(r[4], b"", DATA_SEQ, r[5], r[6]), r[7], r[8],
                     bool(r[9])) for r in rows]

    def secret_drop(self, peer):
        """Our SECRET drop for `peer`, None if there is none."""
        return next((d for d in self.drops(peer) if d.secret), None)

    def message_ids(self, peer):
        """The messages our drops for `peer` carry (the SECRET drop is none)."""
        return {d.message_id for d in self.drops(peer) if not d.secret}

    def count(self, peer):
        return self._db.execute("SELECT COUNT(*) FROM drops WHERE peer = ?", (peer,)).fetchone()[0]

    def put_accepted(self, peer, position, when):
        with self._db:
            self._db.execute("UPDATE drops SET last_put = ? WHERE peer = ? AND slot = ? AND idx = ?",
                             (when, peer, position.slot, position.index))

    def forget(self, peer, message_id):
        """A message's drops (or the SECRET drop) are done with: acknowledged, delivered
        directly, expired (or, a secret, handed over a session or replaced by a newer one)."""
        with self._db:
            self._db.execute("DELETE FROM drops WHERE peer = ? AND message_id = ?", (peer, message_id))
            self._db.execute("DELETE FROM secret_drops WHERE peer = ? AND message_id = ?", (peer, message_id))

    # -- theirs, for us ------------------------------------------------------------

    def read_slot(self, peer):
        row = self._db.execute("SELECT read_slot FROM cursors WHERE peer = ?", (peer,)).fetchone()
        return row[0] if row else None

    def set_read_slot(self, peer, slot):
        with self._db:
            self._db.execute("INSERT OR IGNORE INTO cursors (peer) VALUES (?)", (peer,))
            self._db.execute("UPDATE cursors SET read_slot = ? WHERE peer = ?", (slot, peer))
