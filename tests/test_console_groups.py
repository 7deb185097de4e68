"""The console's group commands (kadchat.ui.console_groups) on the backend double."""

import pytest

from tests.test_console import Console, utc  # noqa: F401 (utc: an autouse fixture)


@pytest.fixture
def console():
    c = Console()
    c.backend.add("bob")
    c.backend.add("Carol Ann")
    return c


def test_make_a_group_add_members_list_write_and_leave(console):
    assert console.run("/group new team") == ["created group team"]
    assert console.run("/group add team bob") == ["added bob to team"]
    assert console.run("/group add team Carol Ann") == ["added Carol Ann to team"]
    assert console.run("/groups") == ["team: alice, bob, Carol Ann (admin alice)"]
    assert console.run("/g team hello all") == ["(posted to team)"]
    assert console.run("/group remove team bob") == ["removed bob from team"]
    assert console.run("/group leave team") == ["left team"]
    assert console.run("/groups") == ["team (left): Carol Ann (admin alice)"]
    assert console.run("/g team still?") == ["error: you are not in team any more"]


def test_incoming_group_messages_and_the_history_in_order(console):
    console.run("/group new team")
    console.backend.receive_group_message("team", "bob", "hi there")
    assert console.out[-1] == "[22:13:20] team/bob: hi there"
    console.run("/g team hi bob")
    assert console.run("/group history team") == [
        "  [2023-11-14 22:13] team/bob: hi there", "  [2023-11-14 22:13] team/alice: hi bob", "* end of team"]


def test_at_a_terminal_own_group_messages_are_echoed():
    c = Console(interactive=True)
    c.run("/group new team")
    assert c.run("/g team hello") == ["[22:13:20] team/alice: hello"]


@pytest.mark.parametrize("line, error", [
    ("/group add team", "error: usage: /group add NAME CONTACT"),
    ("/group new", "error: usage: /group new NAME"),
    ("/g team", "error: usage: /g NAME TEXT"),
    ("/g nosuch hello", "error: no group named 'nosuch'"),
    ("/group history team x", "error: usage: /group history NAME [N]"),
])
def test_bad_input_gets_one_clear_line(console, line, error):
    console.run("/group new team")
    assert console.run(line) == [error]


def test_group_without_a_known_verb_lists_the_commands(console):
    out = console.run("/group")
    assert out[0].startswith("/group new NAME") and any(line.startswith("/g NAME TEXT") for line in out)
    assert console.run("/group frobnicate")[-1] == "error: unknown /group command 'frobnicate'"
    assert "/groups" in "\n".join(console.run("/help"))
