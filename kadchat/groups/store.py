"""groups.db: the groups, their membership logs and messages, in SQLite.

Like the chat history (kadchat.history): WAL with synchronous=FULL, so what a member
received is on disk before it is shown or passed on. Besides the messages it keeps
what sync needs without scanning them: each group's heads (ids no stored message
names as a parent) and each author's frontier (the highest seq up to which every
message of theirs is here).
"""

import sqlite3
from pathlib import Path

from kadchat.groups import membership, messages

GROUPS_FILE = "groups.db"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS groups (
    id BLOB PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS log (
    gid BLOB NOT NULL, idx INTEGER NOT NULL, entry BLOB NOT NULL, PRIMARY KEY (gid, idx)
);
CREATE TABLE IF NOT EXISTS messages (
    gid BLOB NOT NULL, id BLOB NOT NULL, author BLOB NOT NULL, seq INTEGER NOT NULL,
    lamport INTEGER NOT NULL, time_ms INTEGER NOT NULL, text TEXT NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (gid, id), UNIQUE (gid, author, seq)
);
CREATE INDEX IF NOT EXISTS messages_in_order ON messages (gid, lamport, author, seq);
CREATE INDEX IF NOT EXISTS messages_by_time ON messages (gid, author, time_ms);
CREATE TABLE IF NOT EXISTS parents (gid BLOB NOT NULL, id BLOB NOT NULL, PRIMARY KEY (gid, id));
CREATE TABLE IF NOT EXISTS heads (gid BLOB NOT NULL, id BLOB NOT NULL, lamport INTEGER NOT NULL,
                                  PRIMARY KEY (gid, id));
CREATE TABLE IF NOT EXISTS frontier (gid BLOB NOT NULL, author BLOB NOT NULL, seq INTEGER NOT NULL,
                                     PRIMARY KEY (gid, author));
"""


class GroupStore:
    def __init__(self, path):
        self.path = Path(path)
        self._db = sqlite3.connect(str(path), isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self):
        self._db.close()

    # -- groups and logs ---------------------------------------------------------

    def groups(self):
        """[(group id, name, MembershipLog)], by name."""
        rows = self._db.execute("SELECT id, name FROM groups ORDER BY name").fetchall()
        return [(gid, name, self._log(gid)) for gid, name in rows]

    def _log(self, gid):
        entries = [membership.decode_entry(row[0]) for row in
                   self._db.execute("SELECT entry FROM log WHERE gid = ? ORDER BY idx", (gid,))]
        return membership.MembershipLog.from_entries(gid, entries)  # verified again: the file is not trusted

    def add_group(self, log, name):
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute("INSERT INTO groups (id, name) VALUES (?, ?)", (log.group_id, name))
            for entry in log.entries:
                self.add_entry(entry)

    def add_entry(self, entry):
        self._db.execute("INSERT INTO log (gid, idx, entry) VALUES (?, ?, ?)",
                         (entry.group_id, entry.index, entry.encode()))

    def has_name(self, name):
        return self._db.execute("SELECT 1 FROM groups WHERE name = ?", (name,)).fetchone() is not None

    # -- messages ---------------------------------------------------------------------

    def add_message(self, message):
        """Store a verified message; False if it (or another of its author's with that seq) is here."""
        gid, mid = message.group_id, message.id
        try:
            with self._db:
                self._db.execute("BEGIN")
                self._db.execute(
                    "INSERT INTO messages (gid, id, author, seq, lamport, time_ms, text, data) VALUES (?,?,?,?,?,?,?,?)",
                    (gid, mid, message.author, message.seq, message.lamport, message.time_ms, message.text,
                     message.encode()))
                for parent in message.heads:
                    self._db.execute("INSERT OR IGNORE INTO parents (gid, id) VALUES (?, ?)", (gid, parent))
                    self._db.execute("DELETE FROM heads WHERE gid = ? AND id = ?", (gid, parent))
                if self._db.execute("SELECT 1 FROM parents WHERE gid = ? AND id = ?", (gid, mid)).fetchone() is None:
                    self._db.execute("INSERT INTO heads (gid, id, lamport) VALUES (?, ?, ?)", (gid, mid, message.lamport))
                self._advance_frontier(gid, message.author)
        except sqlite3.IntegrityError:
            return False
        return True

    def _advance_frontier(self, gid, author):
        seq = self.frontier(gid, author)
        while self._db.execute("SELECT 1 FROM messages WHERE gid = ? AND author = ? AND seq = ?",
                               (gid, author, seq + 1)).fetchone() is not None:
            seq += 1
        self._db.execute("INSERT OR REPLACE INTO frontier (gid, author, seq) VALUES (?, ?, ?)", (gid, author, seq))

    def frontier(self, gid, author):
        row = self._db.execute("SELECT seq FROM frontier WHERE gid = ? AND author = ?", (gid, author)).fetchone()
        return row[0] if row else 0

    def frontiers(self, gid):
        """{author: highest seq with every earlier one here}."""
        return dict(self._db.execute("SELECT author, seq FROM frontier WHERE gid = ?", (gid,)))

    def heads(self, gid, limit=messages.MAX_HEADS):
        rows = self._db.execute("SELECT id FROM heads WHERE gid = ? ORDER BY lamport DESC, id LIMIT ?", (gid, limit))
        return tuple(row[0] for row in rows)

    def lamport(self, gid):
        return self._db.execute("SELECT COALESCE(MAX(lamport), 0) FROM messages WHERE gid = ?", (gid,)).fetchone()[0]

    def last_seq(self, gid, author):
        return self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM messages WHERE gid = ? AND author = ?",
                                (gid, author)).fetchone()[0]

    def sent_since(self, gid, author, time_ms):
        """How many of the author's messages are stamped at `time_ms` or later (the rate limit)."""
        return self._db.execute("SELECT COUNT(*) FROM messages WHERE gid = ? AND author = ? AND time_ms >= ?",
                                (gid, author, time_ms)).fetchone()[0]

    def page(self, gid, author, from_seq, limit):
        """Up to `limit` of the author's messages from seq `from_seq` on, as signed bytes."""
        rows = self._db.execute("SELECT data FROM messages WHERE gid = ? AND author = ? AND seq >= ? ORDER BY seq LIMIT ?",
                                (gid, author, from_seq, limit))
        return [row[0] for row in rows]

    def history(self, gid, limit, before=None):
        """The latest `limit` messages in the group's order (older than message id `before`), oldest first."""
        where, args = "", ()
        if before is not None:
            row = self._db.execute("SELECT lamport, author, seq FROM messages WHERE gid = ? AND id = ?",
                                   (gid, before)).fetchone()
            if row is None:
                return []
            where, args = "AND (lamport, author, seq) < (?, ?, ?)", tuple(row)
        rows = self._db.execute(f"SELECT data FROM messages WHERE gid = ? {where} "
                                "ORDER BY lamport DESC, author DESC, seq DESC LIMIT ?", (gid, *args, limit))
        return [messages.decode(row[0]) for row in rows][::-1]
