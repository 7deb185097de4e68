import os
import random
import stat

import pytest
from nacl.signing import SigningKey

from kadchat.cards import encode_card
from kadchat.errors import UserError
from kadchat.files import (
    ContactEntry,
    append_contact,
    atomic_write,
    identity_text,
    parse_bootstrap,
    parse_contacts,
    parse_cards,
    parse_identity,
    rewrite_contact,
    validate_name,
)

_rng = random.Random(3)
KEYS = [bytes(SigningKey(_rng.randbytes(32)).verify_key) for _ in range(4)]
CARDS = [encode_card(k) for k in KEYS]


def _write(path, text):
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def test_contacts_with_comments_blank_lines_and_spaced_names(tmp_path):
    path = _write(tmp_path / "contacts.txt", f"# friends\n\n{CARDS[0]} alice\n  {CARDS[1]}   Bob the Builder  \r\n")
    contacts, problems = parse_contacts(path)
    assert problems == []
    assert contacts == [ContactEntry(KEYS[0], "alice", 3), ContactEntry(KEYS[1], "Bob the Builder", 4)]


def test_bad_contact_lines_are_reported_and_good_ones_kept(tmp_path):
    typo = CARDS[2][:10] + ("a" if CARDS[2][10] != "a" else "b") + CARDS[2][11:]
    path = _write(tmp_path / "contacts.txt", f"{CARDS[0]} alice\n{typo} carol\n{CARDS[3]}\nhello world\n{CARDS[1]} bob\n")
    contacts, problems = parse_contacts(path)
    assert [c.name for c in contacts] == ["alice", "bob"]
    assert len(problems) == 3
    assert problems[0].startswith(f"{path}:2: card checksum mismatch")
    assert problems[1] == f"{path}:3: expected 'CARD NAME'"
    assert problems[2].startswith(f"{path}:4: not a kadchat card")


def test_duplicate_card_and_duplicate_name_are_reported(tmp_path):
    path = _write(tmp_path / "contacts.txt", f"{CARDS[0]} alice\n{CARDS[0]} alice2\n{CARDS[1]} ALICE\n")
    contacts, problems = parse_contacts(path)
    assert [c.name for c in contacts] == ["alice"]
    assert problems == [
        f"{path}:2: same card as line 1, ignored",
        f"{path}:3: name 'ALICE' already used on line 1, ignored",
    ]


def test_non_utf8_line_is_a_problem_not_a_crash(tmp_path):
    path = _write(tmp_path / "contacts.txt", b"\xff\xfe garbage\n" + f"{CARDS[0]} alice\n".encode())
    contacts, problems = parse_contacts(path)
    assert [c.name for c in contacts] == ["alice"]
    assert problems == [f"{path}:1: not UTF-8 text"]


def test_byte_order_mark_is_ignored(tmp_path):
    path = _write(tmp_path / "contacts.txt", "\ufeff" + f"{CARDS[0]} alice\n")
    assert parse_contacts(path) == ([ContactEntry(KEYS[0], "alice", 1)], [])


def test_missing_files_are_empty(tmp_path):
    assert parse_contacts(tmp_path / "contacts.txt") == ([], [])
    assert parse_bootstrap(tmp_path / "bootstrap.txt") == ([], [])


def test_unreadable_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="cannot read"):
        parse_contacts(tmp_path)  # a directory


def test_bootstrap_pairs_and_problems(tmp_path):
    path = _write(
        tmp_path / "bootstrap.txt",
        "# seeds\n127.0.0.1 6881\n::1 7000\nlocalhost 6882\n127.0.0.1 6881\n"
        "127.0.0.1\n127.0.0.1 0\n127.0.0.1 70000\nbad_host! 1\n127.0.0.1 1 2\n",
    )
    addresses, problems = parse_bootstrap(path)
    assert addresses == [("127.0.0.1", 6881), ("::1", 7000), ("localhost", 6882)]
    assert problems == [
        f"{path}:5: same address as line 2, ignored",
        f"{path}:6: expected 'HOST PORT'",
        f"{path}:7: bad port '0' (1-65535)",
        f"{path}:8: bad port '70000' (1-65535)",
        f"{path}:9: bad host 'bad_host!'",
        f"{path}:10: expected 'HOST PORT'",
    ]


def test_append_contact_keeps_user_lines_byte_for_byte(tmp_path):
    original = f"# my people\r\n{CARDS[0]}   alice  # not a comment, part of the name\r\n\n\n#tail".encode()
    path = _write(tmp_path / "contacts.txt", original)
    entry = append_contact(path, "  " + CARDS[1].upper() + " ", " bob ")
    data = path.read_bytes()
    assert data == original + b"\n" + f"{CARDS[1]} bob\n".encode()
    assert entry == ContactEntry(KEYS[1], "bob", 6)
    contacts, problems = parse_contacts(path)
    assert problems == [] and contacts[-1] == entry


def test_append_contact_creates_the_file(tmp_path):
    path = tmp_path / "contacts.txt"
    append_contact(path, CARDS[0], "alice")
    assert path.read_text() == f"{CARDS[0]} alice\n"


def test_append_contact_refuses_duplicates_and_bad_input(tmp_path):
    path = _write(tmp_path / "contacts.txt", f"{CARDS[0]} alice\n")
    with pytest.raises(UserError, match="already there"):
        append_contact(path, CARDS[0], "other")
    with pytest.raises(UserError, match="already used"):
        append_contact(path, CARDS[1], "Alice")
    with pytest.raises(UserError, match="not a kadchat card"):
        append_contact(path, "nonsense", "x")
    with pytest.raises(UserError, match="empty"):
        append_contact(path, CARDS[1], "   ")
    assert path.read_text() == f"{CARDS[0]} alice\n"


@pytest.mark.parametrize("name", ["", "#x", "a\tb", "a\x00b", "x" * 65, "a\u200bb"])
def test_bad_names_are_refused(name):
    with pytest.raises(UserError):
        validate_name(name)


def test_names_may_have_inner_spaces_and_non_ascii():
    assert validate_name("  José  da Silva ") == "José  da Silva"


def test_identity_text_round_trips(tmp_path):
    path = _write(tmp_path / "identity.txt", identity_text(KEYS[0], "alice smith"))
    assert parse_identity(path) == (KEYS[0], "alice smith")
    assert f"{CARDS[0]} alice smith\n" in path.read_text()


@pytest.mark.parametrize(
    "text, message",
    [
        ("# nothing\n", "no 'CARD NAME' line"),
        (f"{CARDS[0]} a\n{CARDS[1]} b\n", ":2: only one"),
        ("kc1oops alice\n", ":1: not a kadchat card"),
        (f"{CARDS[0]}\n", ":1: expected 'CARD NAME'"),
    ],
)
def test_bad_identity_txt_is_a_user_error_with_location(tmp_path, text, message):
    path = _write(tmp_path / "identity.txt", text)
    with pytest.raises(UserError, match=message):
        parse_identity(path)


def test_atomic_write_sets_mode_and_leaves_no_temp_files(tmp_path):
    path = tmp_path / "secret"
    path.write_bytes(b"old")
    atomic_write(path, b"new", mode=0o600)
    assert path.read_bytes() == b"new"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert os.listdir(tmp_path) == ["secret"]


def test_failed_atomic_write_keeps_old_file_and_cleans_up(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"old")
    with pytest.raises(TypeError):
        atomic_write(path, "not bytes")
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["f"]


def test_rewrite_contact_renames_or_removes_one_line_and_keeps_the_others_byte_for_byte(tmp_path):
    original = f"# my people\r\n{CARDS[0]}   alice\r\n\xff\n{CARDS[1]} bob\n#tail".encode("latin-1")
    path = _write(tmp_path / "contacts.txt", original)
    rewrite_contact(path, KEYS[0], " Alice B. ")
    assert path.read_bytes() == original.replace(f"{CARDS[0]}   alice".encode(), f"{CARDS[0]} Alice B.".encode())
    rewrite_contact(path, KEYS[1], None)
    assert path.read_bytes() == f"# my people\r\n{CARDS[0]} Alice B.\r\n\xff\n#tail".encode("latin-1")
    with pytest.raises(UserError, match="no line for that card"):
        rewrite_contact(path, KEYS[1], None)
    with pytest.raises(UserError, match="cannot be empty"):
        rewrite_contact(path, KEYS[0], " ")


def test_parse_cards_takes_the_first_word_of_each_line(tmp_path):
    path = _write(tmp_path / "blocked.txt", f"# blocked\n{CARDS[2]} Mallory the spammer\nbad\n")
    assert parse_cards(path) == ([KEYS[2]], [f"{path}:3: not a kadchat card: 'bad'"])
