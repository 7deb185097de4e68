import os
import stat

import pytest
from nacl.signing import SigningKey, VerifyKey

from kadchat.cards import decode_card
from kadchat.errors import UserError
from kadchat.files import parse_identity
from kadchat.identity import load_or_create


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_first_start_creates_private_key_file_and_card(tmp_path):
    me = load_or_create(tmp_path / "data", name="alice")
    key_path = tmp_path / "data" / "identity.key"
    assert _mode(key_path) == 0o600
    assert parse_identity(tmp_path / "data" / "identity.txt") == (me.public_key, "alice")
    assert decode_card(me.card) == me.public_key
    assert me.username == "alice"
    assert sorted(os.listdir(tmp_path / "data")) == ["identity.key", "identity.txt"]


def test_second_start_loads_the_same_identity_without_rewriting(tmp_path):
    first = load_or_create(tmp_path, name="alice")
    card_file = tmp_path / "identity.txt"
    with open(card_file, "a") as f:
        f.write("# my own note\n")
    before = card_file.read_bytes()
    again = load_or_create(tmp_path, ask=lambda prompt: pytest.fail("must not ask"))
    assert again.public_key == first.public_key and again.username == "alice"
    assert card_file.read_bytes() == before


def test_signatures_verify_with_the_public_key(tmp_path):
    me = load_or_create(tmp_path, name="alice")
    VerifyKey(me.public_key).verify(b"hello", me.sign(b"hello"))


def test_username_is_asked_when_not_given(tmp_path):
    prompts = []
    me = load_or_create(tmp_path, ask=lambda prompt: prompts.append(prompt) or "  bob  ")
    assert me.username == "bob" and len(prompts) == 1


def test_no_username_and_no_way_to_ask_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="--name"):
        load_or_create(tmp_path)


def test_bad_username_is_refused(tmp_path):
    with pytest.raises(UserError, match="empty"):
        load_or_create(tmp_path, ask=lambda prompt: "   ")


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620])
def test_key_file_readable_by_others_refuses_to_start(tmp_path, mode):
    load_or_create(tmp_path, name="alice")
    key_path = tmp_path / "identity.key"
    os.chmod(key_path, mode)
    with pytest.raises(UserError) as caught:
        load_or_create(tmp_path)
    message = str(caught.value)
    assert str(key_path) in message and f"chmod 600 {key_path}" in message and "\n" not in message


def test_card_file_and_key_that_disagree_are_refused(tmp_path):
    load_or_create(tmp_path, name="alice")
    os.chmod(tmp_path / "identity.key", 0o600)
    (tmp_path / "identity.key").write_text(bytes(SigningKey.generate()).hex())
    with pytest.raises(UserError, match="different card"):
        load_or_create(tmp_path)


def test_card_file_without_key_is_refused_and_left_alone(tmp_path):
    load_or_create(tmp_path, name="alice")
    os.unlink(tmp_path / "identity.key")
    before = (tmp_path / "identity.txt").read_bytes()
    with pytest.raises(UserError, match="identity.key is missing"):
        load_or_create(tmp_path, name="alice")
    assert (tmp_path / "identity.txt").read_bytes() == before
    assert not (tmp_path / "identity.key").exists()


def test_missing_card_file_is_rewritten_from_the_key(tmp_path):
    me = load_or_create(tmp_path, name="alice")
    os.unlink(tmp_path / "identity.txt")
    again = load_or_create(tmp_path, name="alice2")
    assert again.public_key == me.public_key and again.username == "alice2"


def test_name_flag_that_contradicts_identity_txt_is_refused(tmp_path):
    load_or_create(tmp_path, name="alice")
    with pytest.raises(UserError, match="edit that file"):
        load_or_create(tmp_path, name="mallory")
    assert load_or_create(tmp_path, name=" alice ").username == "alice"


@pytest.mark.parametrize("content", [b"", b"zz" * 32, b"ab" * 31, b"\xff\xfe"])
def test_malformed_key_file_is_a_user_error(tmp_path, content):
    key_path = tmp_path / "identity.key"
    key_path.write_bytes(content)
    os.chmod(key_path, 0o600)
    with pytest.raises(UserError, match="not a kadchat key file"):
        load_or_create(tmp_path, name="alice")


def test_unwritable_data_dir_is_a_user_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="cannot create data directory"):
        load_or_create(tmp_path / "file" / "sub", name="alice")


def test_asking_that_gets_no_answer_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="empty"):
        load_or_create(tmp_path, ask=lambda prompt: None)
