from nacl.signing import SigningKey

from kadchat.blocklist import BlockList
from kadchat.cards import encode_card

BOB, CAROL = (bytes(SigningKey(bytes([n]) * 32).verify_key) for n in (2, 3))


def test_blocked_cards_survive_a_restart_and_unblock_keeps_the_other_lines(tmp_path):
    path = tmp_path / "blocked.txt"
    blocked = BlockList(str(path))
    assert blocked.load() == [] and not blocked.is_blocked(BOB)
    blocked.block(BOB, "Bob")
    blocked.block(CAROL, "")
    blocked.block(BOB, "Bob again")  # once is enough
    again = BlockList(str(path))
    assert again.load() == []
    assert again.is_blocked(BOB) and again.is_blocked(CAROL)
    assert path.read_text().count(encode_card(BOB)) == 1 and f"{encode_card(BOB)} Bob\n" in path.read_text()
    again.unblock(BOB)
    assert not again.is_blocked(BOB)
    third = BlockList(str(path))
    third.load()
    assert not third.is_blocked(BOB) and third.is_blocked(CAROL)
    assert path.read_text().startswith("# Cards you blocked")


def test_a_bad_line_is_a_problem_not_a_crash(tmp_path):
    path = tmp_path / "blocked.txt"
    path.write_text(f"nonsense\n{encode_card(BOB)} Bob\n")
    blocked = BlockList(str(path))
    assert [p.split(": ", 1)[0] for p in blocked.load()] == [f"{path}:1"]
    assert blocked.is_blocked(BOB)
