"""Group chats end to end (issue 17): real client_node.py processes (-N) on loopback, a
dedicated server to join through, and the console's /group commands. The three members
are each other's contacts (tests.client_helpers.friends)."""

import re
import sqlite3
import time

import pytest

from tests.client_helpers import friends, presence, procs, wait_for  # noqa: F401 (procs: a fixture)

pytestmark = [pytest.mark.timeout(90), pytest.mark.slow]  # three clients and a server: 15-25 s each, load 6
NAMES = ("alice", "bob", "carol")
ADDRESSES = {"alice": "127.0.0.1", "bob": "127.0.0.2", "carol": "127.0.0.3"}


def group_line(group, author, text=".*"):
    return rf"^\[\d\d:\d\d:\d\d\] {group}/{author}: {text}$"


def start(procs, people, server, name):
    data_dir = people[name][0]
    (data_dir / "kadchat.conf").write_text("refresh_interval = 1\n")
    return procs.client(data_dir, "-r", bootstrap=server, interface=ADDRESSES[name])


def shown(client):
    """{"[AUTHOR] TEXT"} of every group message `client` printed so far."""
    found = (re.match(group_line("team", "(.*?)", "(.*)"), line) for line in client.lines)
    return {f"[{m[1]}] {m[2]}" for m in found if m}


def has_group(client, line_pattern):
    """/groups until a line matching `line_pattern` is listed."""
    client.send_line("/groups")
    try:
        client.read_until(lambda line: re.search(line_pattern, line), 1.0, line_pattern)
    except TimeoutError:
        return False
    return True


def history(client, group):
    """The /group history lines (author: text, in the group's order)."""
    client.send_line(f"/group history {group} 100")
    lines = []
    client.read_until(lambda line: line == f"* end of {group}" or lines.append(line), 10, "history end")
    return [re.sub(r"^  \[[^]]*\] ", "", line) for line in lines if line.startswith("  [")]


def team(tmp_path, procs):
    """Three members, each connected to the others, in group `team` that alice made."""
    _, server = procs.server()
    people = friends(tmp_path, NAMES)
    clients = {name: start(procs, people, server, name) for name in NAMES}
    for name, client in clients.items():
        others = [other for other in NAMES if other != name]
        wait_for(f"{name} connected", lambda: all(client.seen(presence(other, "connected")) for other in others))
    alice = clients["alice"]
    alice.send_line("/group new team")
    alice.expect(r"^created group team$")
    for name in ("bob", "carol"):
        alice.send_line(f"/group add team {name}")
        alice.expect(rf"^added {name} to team$")
    for name in ("bob", "carol"):
        wait_for(f"{name} in team", lambda: has_group(clients[name], r"^team: alice, bob, carol \(admin alice\)$"))
    return people, server, clients


def test_three_members_see_all_fifteen_messages_once_in_the_same_order(tmp_path, procs):
    _, _, clients = team(tmp_path, procs)
    for i in range(5):
        for name, client in clients.items():
            client.send_line(f"/g team {name} says {i}")
    for name, client in clients.items():
        wanted = {f"[{other}] {other} says {i}" for other in NAMES if other != name for i in range(5)}
        wait_for(f"{name} shows the others' ten", lambda: wanted <= shown(client))
    orders = [history(client, "team") for client in clients.values()]
    assert len(orders[0]) == 15 and len(set(orders[0])) == 15
    assert orders[0] == orders[1] == orders[2]
    for name, client in clients.items():  # each received message shown exactly once
        lines = client.seen(group_line("team", ".*"))
        assert len(lines) == 10 and len(set(lines)) == 10, client.describe()
    for client in clients.values():
        assert client.quit() == 0
        assert not [line for line in client.stderr_lines if "Traceback" in line], client.describe()


def test_a_member_back_from_offline_gets_everything_from_a_third_when_the_author_is_gone(tmp_path, procs):
    people, server, clients = team(tmp_path, procs)
    assert clients["carol"].quit() == 0
    for i in range(3):
        clients["alice"].send_line(f"/g team from alice {i}")
        clients["bob"].send_line(f"/g team from bob {i}")
    clients["bob"].expect(group_line("team", "alice", "from alice 2"), timeout=20)
    assert clients["alice"].quit() == 0  # the author of half of them is gone
    carol = start(procs, people, server, "carol")
    wanted = {f"[{author}] from {author} {i}" for author in ("alice", "bob") for i in range(3)}
    wait_for("carol caught up", lambda: wanted <= shown(carol), timeout=30)
    assert history(carol, "team") == history(clients["bob"], "team")
    assert len(carol.seen(group_line("team", ".*"))) == 6


def test_a_removed_member_reads_nothing_sent_after_the_removal(tmp_path, procs):
    people, _, clients = team(tmp_path, procs)
    alice, bob, carol = (clients[name] for name in NAMES)
    alice.send_line("/g team before")
    carol.expect(group_line("team", "alice", "before"), timeout=20)
    alice.send_line("/group remove team carol")
    alice.expect(r"^removed carol from team$")
    wait_for("bob knows carol is out", lambda: has_group(bob, r"^team: alice, bob \(admin alice\)$"))
    alice.send_line("/g team after the removal, from alice")
    bob.send_line("/g team after the removal, from bob")
    bob.expect(group_line("team", "alice", "after the removal, from alice"), timeout=20)
    alice.expect(group_line("team", "bob", "after the removal, from bob"), timeout=20)
    time.sleep(3)  # three more sync rounds
    wait_for("carol told", lambda: has_group(carol, r"^team \(left\): alice, bob \(admin alice\)$"))
    assert not [line for line in carol.lines if "after the removal" in line]
    assert carol.quit() == 0
    db = sqlite3.connect(str(people["carol"][0] / "groups.db"))
    try:
        assert [text for (text,) in db.execute("SELECT text FROM messages")] == ["before"]
    finally:
        db.close()
