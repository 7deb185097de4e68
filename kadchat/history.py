"""Chat history and outbox in SQLite, one database file per identity.

WAL mode with synchronous=FULL: a commit is on disk before the call returns,
which is what lets the receiver acknowledge a message right after storing it
(an acknowledged message survives the process being killed). The outbox holds
outgoing messages until the peer acknowledges them; they survive restarts.
Each conversation numbers its messages per direction (`seq`); incoming ones
that arrive ahead of a gap are stored as `held` until the gap is filled.
The full-text index (`messages_text`, SQLite FTS5) follows `messages` through
triggers; a file from before it (schema 1) gets it built at open, nothing lost.
"""

import functools
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from kadchat.errors import UserError
from kadchat.model import MessageState

SCHEMA_VERSION = 2  # 2: the full-text index
_S = MessageState
OUTGOING_STATES = (_S.SENDING, _S.QUEUED, _S.SENT, _S.STORED, _S.DELIVERED, _S.FAILED)
# The states an outgoing message may move to from each. Once stored in the network
# it stays `stored` whatever the direct path says meanwhile (sent, failed) until it
# is delivered, or its drops expire and it is only on this computer again (queued).
NEXT_STATES = {
    _S.SENDING: {_S.QUEUED, _S.SENT, _S.STORED, _S.DELIVERED, _S.FAILED},
    _S.QUEUED: {_S.SENDING, _S.SENT, _S.STORED, _S.DELIVERED, _S.FAILED},
    _S.SENT: {_S.SENDING, _S.QUEUED, _S.STORED, _S.DELIVERED, _S.FAILED},
    _S.FAILED: {_S.SENDING, _S.QUEUED, _S.SENT, _S.STORED, _S.DELIVERED},
    _S.STORED: {_S.DELIVERED, _S.QUEUED},
    _S.DELIVERED: set(),
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    peer BLOB NOT NULL,
    id BLOB NOT NULL,
    outgoing INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    text TEXT NOT NULL,
    timestamp REAL NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (peer, id)
);
CREATE INDEX IF NOT EXISTS messages_by_time ON messages (peer, timestamp);
CREATE INDEX IF NOT EXISTS messages_by_id ON messages (id);
CREATE TABLE IF NOT EXISTS outbox (
    peer BLOB NOT NULL,
    id BLOB NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (peer, id)
);
CREATE TABLE IF NOT EXISTS conversations (
    peer BLOB PRIMARY KEY,
    next_outgoing INTEGER NOT NULL DEFAULT 1,
    next_incoming INTEGER NOT NULL DEFAULT 1
);
CREATE VIRTUAL TABLE IF NOT EXISTS messages_text USING fts5(
    text, content='messages', content_rowid='rowid', tokenize='unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS messages_text_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_text (rowid, text) VALUES (new.rowid, new.text);
END;
CREATE TRIGGER IF NOT EXISTS messages_text_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_text (messages_text, rowid, text) VALUES ('delete', old.rowid, old.text);
END;
CREATE TRIGGER IF NOT EXISTS messages_text_update AFTER UPDATE OF text ON messages BEGIN
    INSERT INTO messages_text (messages_text, rowid, text) VALUES ('delete', old.rowid, old.text);
    INSERT INTO messages_text (rowid, text) VALUES (new.rowid, new.text);
END;
"""
_COLUMNS = "id, peer, outgoing, seq, text, timestamp, state"
_ORDER = "timestamp, seq, outgoing"  # a conversation's order, as a row value
_LATEST_FIRST = "timestamp DESC, seq DESC, outgoing DESC"


@dataclass(frozen=True)
class StoredMessage:
    id: bytes
    peer: bytes  # the other side's ed25519 identity key
    outgoing: bool
    seq: int
    text: str
    timestamp: float  # unix seconds, as stamped by the sender
    state: MessageState  # outgoing: sending|queued|sent|stored|delivered|failed; incoming: held|received


def history_path(data_dir, public_key):
    """`<data_dir>/history-<first 8 bytes of the key in hex>.sqlite3`."""
    return Path(data_dir) / f"history-{public_key[:8].hex()}.sqlite3"


class History:
    def __init__(self, path):
        self.path = path
        self._db = _open(path)

    def close(self):
        self._db.close()

    # -- outgoing -------------------------------------------------------------

    def add_outgoing(self, peer, message_id, text, timestamp):
        """Store a new outgoing message in history and outbox; assigns its seq."""
        with self._db:
            self._db.execute("INSERT OR IGNORE INTO conversations (peer) VALUES (?)", (peer,))
            (seq,) = self._db.execute(
                "UPDATE conversations SET next_outgoing = next_outgoing + 1 WHERE peer = ?"
                " RETURNING next_outgoing - 1", (peer,)).fetchone()
            self._db.execute(f"INSERT INTO messages ({_COLUMNS}) VALUES (?, ?, 1, ?, ?, ?, ?)",
                             (message_id, peer, seq, text, timestamp, MessageState.SENDING))
            self._db.execute("INSERT INTO outbox (peer, id, seq) VALUES (?, ?, ?)", (peer, message_id, seq))
        return StoredMessage(message_id, peer, True, seq, text, timestamp, MessageState.SENDING)

    def set_state(self, peer, message_id, state):
        """Record an outgoing message's state if NEXT_STATES allows it; `delivered`
        takes it out of the outbox. Returns whether the state changed."""
        if state not in OUTGOING_STATES:
            raise ValueError(f"not an outgoing state: {state}")
        with self._db:
            row = self._db.execute("SELECT state FROM messages WHERE peer = ? AND id = ? AND outgoing = 1",
                                   (peer, message_id)).fetchone()
            if row is None or state not in NEXT_STATES[MessageState(row[0])]:
                return False
            self._db.execute("UPDATE messages SET state = ? WHERE peer = ? AND id = ? AND outgoing = 1",
                             (state, peer, message_id))
            if state == MessageState.DELIVERED:
                self._db.execute("DELETE FROM outbox WHERE peer = ? AND id = ?", (peer, message_id))
        return True

    def pending_for(self, peer):
        """The peer's undelivered outgoing messages, in conversation order."""
        return self._select(
            f"SELECT {_prefixed('m')} FROM outbox o JOIN messages m ON m.peer = o.peer AND m.id = o.id"
            " WHERE o.peer = ? ORDER BY o.seq", (peer,))

    def peers_with_pending(self):
        return [row[0] for row in self._db.execute("SELECT DISTINCT peer FROM outbox ORDER BY peer")]

    # -- incoming -------------------------------------------------------------

    def has(self, peer, message_id):
        return self._db.execute("SELECT 1 FROM messages WHERE peer = ? AND id = ?",
                                (peer, message_id)).fetchone() is not None

    def store_incoming(self, message, now_received, next_incoming):
        """In one durable transaction: insert `message` (once per id), mark the
        messages `now_received` (ids, may include the new one) as received, and
        move the conversation's next expected seq. Returns False for a duplicate."""
        with self._db:
            inserted = self._db.execute(
                f"INSERT OR IGNORE INTO messages ({_COLUMNS}) VALUES (?, ?, 0, ?, ?, ?, ?)",
                (message.id, message.peer, message.seq, message.text, message.timestamp, MessageState.HELD)).rowcount
            if not inserted:
                return False
            self._db.executemany("UPDATE messages SET state = ? WHERE peer = ? AND id = ?",
                                 [(MessageState.RECEIVED, message.peer, i) for i in now_received])
            self._db.execute("INSERT OR IGNORE INTO conversations (peer) VALUES (?)", (message.peer,))
            self._db.execute("UPDATE conversations SET next_incoming = ? WHERE peer = ?",
                             (next_incoming, message.peer))
        return True

    def incoming_state(self, peer):
        """(next expected incoming seq, held messages in seq order)."""
        row = self._db.execute("SELECT next_incoming FROM conversations WHERE peer = ?", (peer,)).fetchone()
        held = self._select(f"SELECT {_COLUMNS} FROM messages WHERE peer = ? AND outgoing = 0"
                            " AND state = ? ORDER BY seq", (peer, MessageState.HELD))
        return (row[0] if row else 1), held

    # -- reading --------------------------------------------------------------

    def get(self, message_id):
        found = self._select(f"SELECT {_COLUMNS} FROM messages WHERE id = ?", (message_id,))
        return found[0] if found else None

    def conversation(self, peer, limit=200, before=None):
        """The latest `limit` messages with `peer`, oldest first (held ones not yet);
        with `before` (a message id), only those older than that message.

        By timestamp; within one direction, equal timestamps keep `seq` order."""
        older, args = "", ()
        if before is not None:
            older = f" AND ({_ORDER}) < (SELECT {_ORDER} FROM messages WHERE peer = ? AND id = ?)"
            args = (peer, before)
        latest = self._select(
            f"SELECT {_COLUMNS} FROM messages WHERE peer = ? AND state != ?{older}"
            f" ORDER BY {_LATEST_FIRST} LIMIT ?",
            (peer, MessageState.HELD, *args, limit))
        return latest[::-1]

    def search(self, text, peers, limit=50):
        """Messages with any of `peers` whose words start with the words of `text`
        (in any order), newest first; none for text without a word."""
        query = fts_query(text)
        if not query or not peers:
            return []
        marks = ", ".join("?" * len(peers))
        return self._select(
            f"SELECT {_prefixed('m')} FROM messages_text f JOIN messages m ON m.rowid = f.rowid"
            f" WHERE messages_text MATCH ? AND m.peer IN ({marks}) AND m.state != ?"
            " ORDER BY m.timestamp DESC LIMIT ?", (query, *peers, MessageState.HELD, limit))

    def _select(self, query, args):
        return [StoredMessage(row[0], row[1], bool(row[2]), *row[3:6], MessageState(row[6]))
                for row in self._db.execute(query, args)]


def fts_query(text):
    """The user's words as an FTS5 query: each a quoted prefix, all of them required.

    Quoting keeps FTS5's operators (AND, NEAR, *, ^, column filters) out of
    what a user types; a word without letters or digits matches nothing."""
    words = [word.replace('"', '""') for word in text.split()]
    return " ".join(f'"{word}"*' for word in words if any(c.isalnum() for c in word))


def _prefixed(alias):
    return ", ".join(f"{alias}.{column.strip()}" for column in _COLUMNS.split(","))


def _open(path):
    try:
        db = sqlite3.connect(str(path))
    except sqlite3.Error as e:
        raise UserError(f"cannot open history file {path}: {e}") from None
    try:
        version = _check_version(db, path)  # before anything writes to a file that may not be ours
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        with db:
            db.executescript(_SCHEMA)
        if version < SCHEMA_VERSION:
            with db:  # index what an older file holds; the version moves only once it is done
                db.execute("INSERT INTO messages_text (messages_text) VALUES ('rebuild')")
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        _check_columns(db, path)
    except sqlite3.Error as e:
        db.close()
        raise UserError(f"cannot use history file {path}: {e}") from None
    except UserError:
        db.close()
        raise
    return db


def _check_version(db, path):
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise UserError(f"history file {path} was written by a newer kadchat")
    if version == 0 and _columns(db):  # we set the version with the first tables
        raise UserError(f"{path} is not a kadchat history file (it holds other tables)")
    return version


def _check_columns(db, path):
    """Refuse at open, not at first use, a file whose tables lack our columns."""
    have = _columns(db)
    for table, columns in _expected_columns().items():
        missing = sorted(columns - have.get(table, set()))
        if missing:
            raise UserError(f"history file {path} is damaged: table {table} lacks {', '.join(missing)}")


def _columns(db):
    """{table: {column names}} of the database."""
    tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    return {t: {row[1] for row in db.execute(f"PRAGMA table_info('{t}')")} for t in tables}


@functools.cache
def _expected_columns():
    db = sqlite3.connect(":memory:")
    db.executescript(_SCHEMA)
    try:
        return _columns(db)
    finally:
        db.close()
