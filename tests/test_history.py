"""kadchat.history: SQLite history, outbox, incoming order state."""

import sqlite3

import pytest

from kadchat.errors import UserError
from kadchat.history import History, StoredMessage, history_path
from kadchat.model import MessageState

BOB = b"B" * 32
CAROL = b"C" * 32


@pytest.fixture
def history(tmp_path):
    h = History(tmp_path / "h.sqlite3")
    yield h
    h.close()


def incoming(message_id, seq, peer=BOB, text="hi"):
    return StoredMessage(message_id, peer, False, seq, text, 100.0 + seq, "held")


def test_file_is_durable_wal(tmp_path):
    h = History(tmp_path / "h.sqlite3")
    assert h._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert h._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    h.close()


def test_one_file_per_identity_named_by_short_key(tmp_path):
    assert history_path(tmp_path, bytes(range(32))).name == "history-0001020304050607.sqlite3"


def test_outgoing_messages_get_increasing_seq_per_conversation(history):
    a = history.add_outgoing(BOB, b"1" * 16, "one", 1.0)
    b = history.add_outgoing(BOB, b"2" * 16, "two", 2.0)
    c = history.add_outgoing(CAROL, b"3" * 16, "other", 3.0)
    assert (a.seq, b.seq, c.seq) == (1, 2, 1)
    assert a.state == "sending" and a.outgoing


def test_outbox_keeps_undelivered_messages_across_reopen(tmp_path):
    h = History(tmp_path / "h.sqlite3")
    for i in range(3):
        h.add_outgoing(BOB, bytes([i]) * 16, f"m{i}", float(i))
    h.set_state(BOB, b"\0" * 16, "delivered")
    h.set_state(BOB, b"\1" * 16, "sent")
    h.close()
    reopened = History(tmp_path / "h.sqlite3")
    pending = reopened.pending_for(BOB)
    assert [(m.text, m.state) for m in pending] == [("m1", "sent"), ("m2", "sending")]
    assert reopened.peers_with_pending() == [BOB]
    assert reopened.add_outgoing(BOB, b"x" * 16, "m3", 4.0).seq == 4
    reopened.close()


def test_incoming_message_is_stored_once_by_id(history):
    m = incoming(b"i" * 16, 1)
    assert history.store_incoming(m, [m.id], next_incoming=2)
    assert not history.store_incoming(m, [m.id], next_incoming=2)
    assert history.has(BOB, m.id) and not history.has(CAROL, m.id)
    assert [x.state for x in history.conversation(BOB)] == ["received"]


def test_held_messages_wait_for_the_gap_and_survive_reopen(tmp_path):
    h = History(tmp_path / "h.sqlite3")
    h.store_incoming(incoming(b"3" * 16, 3), [], next_incoming=1)
    h.store_incoming(incoming(b"2" * 16, 2), [], next_incoming=1)
    h.close()
    h = History(tmp_path / "h.sqlite3")
    next_seq, held = h.incoming_state(BOB)
    assert next_seq == 1 and [m.seq for m in held] == [2, 3]
    assert h.conversation(BOB) == []  # held messages are not shown yet
    h.store_incoming(incoming(b"1" * 16, 1), [b"1" * 16, b"2" * 16, b"3" * 16], next_incoming=4)
    assert h.incoming_state(BOB) == (4, [])
    assert [m.seq for m in h.conversation(BOB)] == [1, 2, 3]
    h.close()


def test_conversation_returns_the_latest_oldest_first(history):
    for i in range(5):
        history.add_outgoing(BOB, bytes([i]) * 16, f"m{i}", float(i))
    assert [m.text for m in history.conversation(BOB, limit=3)] == ["m2", "m3", "m4"]
    assert history.get(b"\4" * 16).text == "m4" and history.get(b"z" * 16) is None


def test_only_outgoing_states_can_be_set(history):
    with pytest.raises(ValueError):
        history.set_state(BOB, b"i" * 16, "received")


def test_a_file_that_is_not_a_database_is_a_user_error(tmp_path):
    path = tmp_path / "h.sqlite3"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(UserError, match="cannot use history file"):
        History(path)


def sqlite_file(path, script):
    """`path`, an SQLite file that `script` was run on."""
    db = sqlite3.connect(path)
    db.executescript(script)
    db.close()
    return path


def test_a_newer_schema_is_refused(tmp_path):
    path = sqlite_file(tmp_path / "h.sqlite3", "PRAGMA user_version=99")
    with pytest.raises(UserError, match="newer kadchat"):
        History(path)


def test_unopenable_path_is_a_user_error(tmp_path):
    with pytest.raises(UserError):
        History(tmp_path / "missing-dir" / "h.sqlite3")


def test_a_foreign_sqlite_file_is_refused_at_open_and_left_untouched(tmp_path):
    path = sqlite_file(tmp_path / "h.sqlite3", "CREATE TABLE photos (name TEXT, data BLOB)")
    with pytest.raises(UserError, match="not a kadchat history file"):
        History(path)
    db = sqlite3.connect(path)
    assert [r[0] for r in db.execute("SELECT name FROM sqlite_master")] == ["photos"]
    db.close()


def test_a_table_missing_a_column_is_refused_at_open_not_at_first_use(tmp_path):
    path = tmp_path / "h.sqlite3"
    History(path).close()
    sqlite_file(path, "DROP TABLE outbox; CREATE TABLE outbox (peer BLOB, id BLOB);")
    with pytest.raises(UserError, match="table outbox lacks seq"):
        History(path)


def test_states_are_enum_members_stored_under_their_plain_names(history):
    history.add_outgoing(BOB, b"1" * 16, "one", 1.0)
    history.set_state(BOB, b"1" * 16, MessageState.SENT)
    assert history.get(b"1" * 16).state is MessageState.SENT
    assert history._db.execute("SELECT state FROM messages").fetchone() == ("sent",)


def test_conversation_pages_back_from_a_message(history):
    for i in range(7):
        history.add_outgoing(BOB, bytes([i]) * 16, f"m{i}", float(i // 2))  # equal times in pairs
    history.store_incoming(incoming(b"i" * 16, 1, text="in"), [b"i" * 16], next_incoming=2)  # at 101
    page = history.conversation(BOB, limit=3, before=b"\5" * 16)
    assert [m.text for m in page] == ["m2", "m3", "m4"]
    older = history.conversation(BOB, limit=3, before=page[0].id)
    assert [m.text for m in older] == ["m0", "m1"]
    assert [m.text for m in history.conversation(BOB, limit=2)] == ["m6", "in"]
    assert history.conversation(BOB, before=b"?" * 16) == []  # no such message: nothing older


def test_search_finds_word_prefixes_in_any_order_newest_first(history):
    history.add_outgoing(BOB, b"1" * 16, "Lunch at the café tomorrow?", 1.0)
    history.add_outgoing(CAROL, b"2" * 16, "tomorrow we lunch", 2.0)
    history.add_outgoing(BOB, b"3" * 16, "no food talk", 3.0)
    history.store_incoming(StoredMessage(b"4" * 16, BOB, False, 2, "lunch held back", 4.0, "held"),
                           [], next_incoming=1)
    assert [m.text for m in history.search("TOMORROW lun", [BOB, CAROL])] == [
        "tomorrow we lunch", "Lunch at the café tomorrow?"]
    assert [m.id for m in history.search("cafe", [BOB])] == [b"1" * 16]  # accents folded
    assert history.search("lunch", [CAROL], limit=1)[0].peer == CAROL
    assert history.search("lunch", []) == []


@pytest.mark.parametrize("text", ['"', "a*", "NEAR(", "text:x", "-", "AND OR", "^", "  "])
def test_search_treats_query_syntax_as_plain_words(history, text):
    history.add_outgoing(BOB, b"1" * 16, 'quote " a*b NEAR( text:x - AND OR ^', 1.0)
    found = history.search(text, [BOB])  # never an FTS5 syntax error
    assert found in ([], [history.get(b"1" * 16)])


def test_the_index_follows_deletes_and_edits(history):
    history.add_outgoing(BOB, b"1" * 16, "apple", 1.0)
    history._db.execute("UPDATE messages SET text = 'pear'")
    assert history.search("apple", [BOB]) == [] and len(history.search("pear", [BOB])) == 1
    history._db.execute("DELETE FROM messages")
    assert history.search("pear", [BOB]) == []


# The tables of schema 1, as kadchat wrote them before the full-text index.
SCHEMA_1 = """
CREATE TABLE messages (peer BLOB NOT NULL, id BLOB NOT NULL, outgoing INTEGER NOT NULL,
    seq INTEGER NOT NULL, text TEXT NOT NULL, timestamp REAL NOT NULL, state TEXT NOT NULL,
    PRIMARY KEY (peer, id));
CREATE INDEX messages_by_time ON messages (peer, timestamp);
CREATE INDEX messages_by_id ON messages (id);
CREATE TABLE outbox (peer BLOB NOT NULL, id BLOB NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (peer, id));
CREATE TABLE conversations (peer BLOB PRIMARY KEY, next_outgoing INTEGER NOT NULL DEFAULT 1,
    next_incoming INTEGER NOT NULL DEFAULT 1);
PRAGMA user_version=1;
"""


def test_a_schema_1_file_gets_the_index_and_keeps_everything(tmp_path):
    path = sqlite_file(tmp_path / "h.sqlite3", SCHEMA_1 + f"""
        INSERT INTO messages VALUES (x'{BOB.hex()}', x'01', 1, 1, 'old picnic plans', 1.0, 'queued');
        INSERT INTO messages VALUES (x'{BOB.hex()}', x'02', 0, 1, 'picnic? yes', 2.0, 'received');
        INSERT INTO outbox VALUES (x'{BOB.hex()}', x'01', 1);
        INSERT INTO conversations VALUES (x'{BOB.hex()}', 2, 2);""")
    h = History(path)
    assert [m.text for m in h.search("picnic", [BOB])] == ["picnic? yes", "old picnic plans"]
    assert [m.text for m in h.pending_for(BOB)] == ["old picnic plans"]
    assert h.incoming_state(BOB) == (2, [])
    assert h.add_outgoing(BOB, b"\3", "new picnic", 3.0).seq == 2
    assert len(h.search("picnic", [BOB])) == 3
    h.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone() == (2,)
    db.close()
    h = History(path)  # opened again: indexed once, not twice
    assert len(h.search("picnic", [BOB])) == 3
    h.close()
