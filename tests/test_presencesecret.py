import json

from nacl.signing import SigningKey

from kadchat.cards import encode_card
from kadchat.presencesecret import NoSecrets, PresenceSecrets

BOB = bytes(SigningKey(b"b" * 32).verify_key)


def test_ours_is_made_once_kept_and_rotated_and_theirs_are_kept_per_contact(tmp_path):
    path = tmp_path / "presence-secrets.json"
    secrets = PresenceSecrets(str(path))
    assert secrets.load() == [] and len(secrets.own) == 32
    own = secrets.own
    assert secrets.of(BOB) == b""
    assert secrets.received(BOB, b"s" * 32) and not secrets.received(BOB, b"s" * 32)
    assert not secrets.received(BOB, b"short")  # not a secret
    again = PresenceSecrets(str(path))
    assert again.load() == [] and again.own == own and again.of(BOB) == b"s" * 32
    assert again.rotate() == own and again.own != own
    assert json.loads(path.read_text())["own"] == again.own.hex() and again.of(BOB) == b"s" * 32
    newer = again.own
    assert again.rotate(forgetting=BOB) == newer  # a removed contact's secret goes with the rotation
    assert PresenceSecrets(str(path)).of(BOB) == b"" and encode_card(BOB) not in path.read_text()


def test_an_unreadable_file_is_one_problem_and_a_new_secret(tmp_path):
    path = tmp_path / "presence-secrets.json"
    path.write_text('{"own": "zz"}')
    secrets = PresenceSecrets(str(path))
    problems = secrets.load()
    assert len(problems) == 1 and "new presence secret" in problems[0]
    assert len(secrets.own) == 32 and PresenceSecrets(str(path)).load() == []


def test_parts_without_secrets_see_request_points_only():
    assert NoSecrets.own == b"" and NoSecrets.of(BOB) == b""
