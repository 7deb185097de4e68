"""transfers.db: every file transfer, both directions, so that one resumes after a restart.

One row per transfer. For an incoming one `path` is the partial file while it
arrives (verified chunks written in place) and the final file once done;
`bitmap` says which chunks of it are verified and written, `leaves` are the
chunk hashes once checked against the root. For an outgoing one `path` is
the file offered. `id` (the rowid) is the number the UIs show (`#3`).
"""

import sqlite3
from dataclasses import dataclass

TRANSFERS_FILE = "transfers.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS transfers (
    id INTEGER PRIMARY KEY,
    transfer BLOB NOT NULL,
    peer BLOB NOT NULL,
    outgoing INTEGER NOT NULL,
    name TEXT NOT NULL,
    size INTEGER NOT NULL,
    root BLOB NOT NULL,
    flags INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL,
    reason TEXT,
    path TEXT,
    leaves BLOB,
    bitmap BLOB NOT NULL DEFAULT x'',
    sent INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    UNIQUE (transfer, peer, outgoing)
)
"""


@dataclass
class Row:
    id: int
    transfer: bytes
    peer: bytes
    outgoing: bool
    name: str
    size: int
    root: bytes
    flags: int
    state: str
    reason: str | None
    path: str | None
    leaves: bytes | None
    bitmap: bytes
    sent: int
    created: float


class TransferStore:
    def __init__(self, path):
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)

    def close(self):
        self._db.close()

    def add(self, transfer, peer, outgoing, name, size, root, flags, state, path, created) -> Row:
        cursor = self._db.execute(
            "INSERT INTO transfers (transfer, peer, outgoing, name, size, root, flags, state, path, created)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (transfer, peer, int(outgoing), name, size, root, flags, state, path, created))
        return self.get(cursor.lastrowid)

    def get(self, row_id) -> Row | None:
        row = self._db.execute("SELECT * FROM transfers WHERE id = ?", (row_id,)).fetchone()
        return _row(row) if row else None

    def find(self, transfer, peer, outgoing) -> Row | None:
        row = self._db.execute("SELECT * FROM transfers WHERE transfer = ? AND peer = ? AND outgoing = ?",
                               (transfer, peer, int(outgoing))).fetchone()
        return _row(row) if row else None

    def all(self) -> list[Row]:
        return [_row(r) for r in self._db.execute("SELECT * FROM transfers ORDER BY id")]

    def unfinished(self) -> list[Row]:
        return [_row(r) for r in self._db.execute(
            "SELECT * FROM transfers WHERE state IN ('offered', 'active') ORDER BY id")]

    def update(self, row_id, **fields):
        names = ", ".join(f"{name} = ?" for name in fields)
        self._db.execute(f"UPDATE transfers SET {names} WHERE id = ?", (*fields.values(), row_id))


def _row(values):
    row = Row(*values)
    row.outgoing = bool(row.outgoing)
    return row
