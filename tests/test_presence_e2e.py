"""Live presence end to end (issue 11): a dedicated server and console clients
(client_node.py -N) as real processes on loopback, with DEFAULT settings: no
-r, no kadchat.conf. What a contact shows must come from the session's hello,
keep-alives and goodbye and from the look-ups at start, never from fast polling
(without -r a contact that found nothing looks again only after 30 s).

The bounds are generous functional ones; the figures (p50/p95) are
bench/presence_latency.py's. With -s each test prints what it measured.
"""

import signal
import time

import pytest

from tests.child_process import signal_group
from tests.client_helpers import (  # noqa: F401 (procs: a fixture)
    CARD_LINE, LISTENING, client_argv, friends, presence, procs, received, seconds_until, seconds_until_all, state,
    undelivered)

pytestmark = pytest.mark.timeout(120)

CONNECTED_WITHIN = 5.0
OFFLINE_AFTER_QUIT_WITHIN = 5.0
# The kill and freeze test's clients give a silent contact up after 6 s, not the default 45:
QUICK_SILENCE = "keepalive_interval = 2\ngone_after = 6\n"
OFFLINE_AFTER_KILL_WITHIN = 15.0  # 6 s of silence, checked every 2/3 s
RESTARTED_CONNECTED_WITHIN = 6.0
QUEUED_DELIVERED_WITHIN = 5.0
START_TRIALS = 5
STORED_WITHIN = 20.0  # 5 s waiting for a session (kadchat.mailbox.SEND_DELAY), then the puts

BOB_HOST = "127.0.0.2"  # each client on its own address, as on two machines


def start_together(procs, people, server, hosts=("127.0.0.1", BOB_HOST)):
    """The two `people` spawned at the same moment; returns (first, second, when)."""
    began = time.monotonic()
    clients = [procs.spawn(client_argv(data_dir, bootstrap=server, interface=host), name=name)
               for (name, (data_dir, _)), host in zip(people.items(), hosts)]
    for client in clients:
        client.expect(LISTENING)
    return *clients, began


def restart(procs, people, server, name, host):
    began = time.monotonic()
    return procs.client(people[name][0], bootstrap=server, interface=host), began


def both_connected(first, second, since, within=CONNECTED_WITHIN, names=("alice", "bob")):
    return max(seconds_until(first, presence(names[1], "connected"), since, within),
               seconds_until(second, presence(names[0], "connected"), since, within))


def test_two_running_clients_that_add_each_other_are_connected_and_see_away_and_back(tmp_path, procs):
    _, server = procs.server()
    alice = procs.client(tmp_path / "alice", "--name", "alice", bootstrap=server)
    bob = procs.client(tmp_path / "bob", "--name", "bob", bootstrap=server, interface=BOB_HOST)
    cards = {name: p.seen(CARD_LINE)[0].strip() for name, p in (("alice", alice), ("bob", bob))}
    bob.send_line(f"/add {cards['alice']} alice")
    # His look-up finds her; she refuses his handshakes: he is not her contact yet.
    bob.expect(presence("alice", "in the network"))
    alice.send_line(f"/add {cards['bob']} bob")
    added = time.monotonic()
    took = both_connected(alice, bob, added)
    alice.send_line("/away")
    away = time.monotonic()
    took_away = seconds_until(bob, presence("alice", "away"), away, CONNECTED_WITHIN)
    alice.send_line("/back")
    back = time.monotonic()
    took_back = seconds_until(bob, presence("alice", "connected"), back, CONNECTED_WITHIN)
    print(f"\nconnected {took:.2f} s after the second /add; away shown in {took_away:.2f} s, "
          f"back in {took_back:.2f} s")
    assert alice.quit() == 0 and bob.quit() == 0


def test_contacts_starting_at_the_same_moment_are_connected_on_both_sides(tmp_path, procs):
    # Their start look-ups race their first puts: each trial may lose the race.
    _, server = procs.server()
    took = []
    for trial in range(START_TRIALS):
        people = friends(tmp_path / str(trial), ["alice", "bob"])
        alice, bob, began = start_together(procs, people, server)
        took.append(both_connected(alice, bob, began))
        assert alice.quit() == 0 and bob.quit() == 0
    print(f"\nconnected on both sides after a start together (s): {[round(t, 2) for t in took]}")


def test_a_clean_quit_shows_offline_and_the_return_is_connected_with_the_queued_message(tmp_path, procs):
    _, server = procs.server()
    people = friends(tmp_path, ["alice", "bob"])
    alice, bob, began = start_together(procs, people, server)
    both_connected(alice, bob, began)

    bob.send_line("/quit")
    quit_at = time.monotonic()
    took_offline = seconds_until(alice, presence("bob", "offline"), quit_at, OFFLINE_AFTER_QUIT_WITHIN)
    assert bob.wait() == 0
    alice.send_line("/msg bob while you were out")
    alice.expect(undelivered("bob"))

    bob, back = restart(procs, people, server, "bob", BOB_HOST)
    took_back = seconds_until(alice, presence("bob", "connected"), back, RESTARTED_CONNECTED_WITHIN)
    took_message = seconds_until(bob, received("alice", "while you were out"), back, QUEUED_DELIVERED_WITHIN)
    alice.expect(state("delivered", "bob"), timeout=QUEUED_DELIVERED_WITHIN)
    print(f"\noffline {took_offline:.2f} s after /quit; connected {took_back:.2f} s after the restart, "
          f"queued message in {took_message:.2f} s")
    assert alice.quit() == 0 and bob.quit() == 0


def test_a_client_killed_and_restarted_at_once_is_connected_again_and_gets_the_queued_message(tmp_path, procs):
    # Faster than the 45 s silence: alice still holds the dead session when bob comes back.
    _, server = procs.server()
    people = friends(tmp_path, ["alice", "bob"])
    alice, bob, began = start_together(procs, people, server)
    both_connected(alice, bob, began)
    bob.kill()
    alice.send_line("/msg bob did you crash?")
    alice.expect(undelivered("bob"))
    bob, back = restart(procs, people, server, "bob", BOB_HOST)
    took_back, took_message = seconds_until_all(
        bob, [presence("alice", "connected"), received("alice", "did you crash?")], back, QUEUED_DELIVERED_WITHIN)
    alice.expect(state("delivered", "bob"), timeout=QUEUED_DELIVERED_WITHIN)
    assert not alice.seen(presence("bob", "offline"))
    print(f"\nafter a kill and an immediate restart: connected {took_back:.2f} s, "
          f"queued message in {took_message:.2f} s")
    assert alice.quit() == 0 and bob.quit() == 0


@pytest.mark.slow
def test_a_killed_client_and_a_frozen_one_show_offline_when_their_keepalives_stop_and_connected_on_return(
        tmp_path, procs):
    # Two pairs at once, to wait out the silence once: bob is killed and restarted;
    # dave is frozen (SIGSTOP) and thawed, as after a network outage: no restart, no new
    # address, and for a while a session that both sides believe in.
    _, server = procs.server()
    people = friends(tmp_path / "1", ["alice", "bob"])
    others = friends(tmp_path / "2", ["carol", "dave"])
    for data_dir, _ in [*people.values(), *others.values()]:
        (data_dir / "kadchat.conf").write_text(QUICK_SILENCE)
    alice, bob, began = start_together(procs, people, server)
    carol, dave, _ = start_together(procs, others, server, ("127.0.0.3", "127.0.0.4"))
    both_connected(alice, bob, began)
    both_connected(carol, dave, began, names=("carol", "dave"))
    bob.kill()  # no goodbye, no offline record: only the silence tells
    signal_group(dave.popen, signal.SIGSTOP)
    silent = time.monotonic()
    took_offline = seconds_until(alice, presence("bob", "offline"), silent, OFFLINE_AFTER_KILL_WITHIN)
    took_frozen = seconds_until(carol, presence("dave", "offline"), silent, OFFLINE_AFTER_KILL_WITHIN)
    alice.send_line("/msg bob are you back?")
    alice.expect(undelivered("bob"))

    thawed = time.monotonic()
    signal_group(dave.popen, signal.SIGCONT)
    bob, back = restart(procs, people, server, "bob", BOB_HOST)
    took_back = seconds_until(alice, presence("bob", "connected"), back, RESTARTED_CONNECTED_WITHIN)
    took_message = seconds_until(bob, received("alice", "are you back?"), back, QUEUED_DELIVERED_WITHIN)
    alice.expect(state("delivered", "bob"), timeout=QUEUED_DELIVERED_WITHIN)
    took_thawed = seconds_until(carol, presence("dave", "connected"), thawed, RESTARTED_CONNECTED_WITHIN)
    dave.expect(presence("carol", "connected"), timeout=RESTARTED_CONNECTED_WITHIN)
    print(f"\noffline {took_offline:.1f} s after SIGKILL, {took_frozen:.1f} s after SIGSTOP; connected "
          f"{took_back:.2f} s after the restart (queued message in {took_message:.2f} s), "
          f"{took_thawed:.2f} s after SIGCONT")
    for process in (alice, bob, carol, dave):
        assert process.quit() == 0


def test_a_message_written_right_after_the_goodbye_goes_into_a_dead_drop(tmp_path, procs):
    # bob is still shutting down (his offline record on its way to the DHT) when alice
    # writes: the message must not go out over a session with the leaving bob.
    _, server = procs.server()
    people = friends(tmp_path, ["alice", "bob"])
    alice, bob, began = start_together(procs, people, server)
    both_connected(alice, bob, began)
    bob.send_line("/quit")
    alice.expect(presence("bob", "offline"), timeout=OFFLINE_AFTER_QUIT_WITHIN)
    alice.send_line("/msg bob just missed you")
    alice.expect(r"^\(queued for bob\)$", timeout=5)
    alice.expect(r"^\(stored for bob\)$", timeout=STORED_WITHIN)
    assert bob.wait() == 0
    assert not alice.seen(state("sent", "bob"))
    assert alice.quit() == 0
