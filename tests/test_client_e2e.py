"""client_node.py end to end: real client and server processes on loopback,
each client with its own data directory, chatting through the console (-N);
and dedicated_server.py as the introducer those clients register with.

Clients look their contacts up every second (kadchat.conf `refresh_interval`),
so presence changes show within a few seconds."""

import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kadchat.nat import natwire
from tests.nat_helpers import register as signed, tag as owned_tag
from tests.client_helpers import (
    CARD_LINE, CHILD_ENV, CLIENT, ROOT, chat_both_ways, client_argv, friends, history_rows, make_identity, presence,
    procs, received, state, texts_from, write_contacts)  # noqa: F401 (procs: a fixture)

pytestmark = pytest.mark.timeout(90)

FAST_REFRESH = "refresh_interval = 1\n"


def fast_refresh(*data_dirs):
    for data_dir in data_dirs:
        os.makedirs(data_dir, exist_ok=True)
        (data_dir / "kadchat.conf").write_text(FAST_REFRESH)


def test_two_people_at_terminals_add_each_other_chat_both_ways_and_keep_their_history(tmp_path, procs):
    _, server = procs.server()
    alice_dir, bob_dir = tmp_path / "alice", tmp_path / "bob"
    fast_refresh(alice_dir, bob_dir)
    alice = procs.client(alice_dir, "-r", "--name", "alice", bootstrap=server, pty_mode=True)
    bob = procs.client(bob_dir, "-r", "--name", "bob", bootstrap=server, pty_mode=True,
                       interface="127.0.0.2")
    alice_card = alice.seen(CARD_LINE)[0].strip()
    bob_card = bob.seen(CARD_LINE)[0].strip()

    alice.send_line(f"/add {bob_card} bob")
    alice.expect(r"^added bob$")
    bob.send_line(f"/add {alice_card} alice")
    bob.expect(r"^added alice$")
    chat_both_ways(alice, bob, "hello", "hi alice, how are you?")
    alice.send_line("/contacts")
    alice.expect(r"^bob: connected, direct$")

    assert alice.quit() == 0
    assert bob.quit() == 0
    bob = procs.client(bob_dir, pty_mode=True)
    bob.expect(r"^kadchat: you are bob;")  # the same identity, no name asked
    assert bob.quit() == 0
    assert history_rows(bob_dir) == [(0, "hello", "received"), (1, "hi alice, how are you?", "delivered")]
    assert history_rows(alice_dir) == [(1, "hello", "delivered"), (0, "hi alice, how are you?", "received")]
    for process in procs.started[1:]:
        assert not [line for line in process.stderr_lines if "Traceback" in line], process.describe()


def modes(data_dir):
    """{name: permission bits} of everything in `data_dir`."""
    return {path.name: stat.S_IMODE(path.stat().st_mode) for path in Path(data_dir).iterdir()}


def test_everything_the_client_writes_is_private_to_its_user(tmp_path, procs):
    _, server = procs.server()
    conf = tmp_path / "fast.conf"  # outside the data directories, which the clients create
    conf.write_text(FAST_REFRESH)
    alice_dir, bob_dir = tmp_path / "alice", tmp_path / "bob"
    alice = procs.client(alice_dir, "-r", "--name", "alice", "--config", str(conf), bootstrap=server)
    bob = procs.client(bob_dir, "-r", "--name", "bob", "--config", str(conf), bootstrap=server,
                       interface="127.0.0.2")
    alice.send_line(f"/add {bob.seen(CARD_LINE)[0].strip()} bob")
    bob.send_line(f"/add {alice.seen(CARD_LINE)[0].strip()} alice")
    chat_both_ways(alice, bob)
    [history] = [name for name in modes(alice_dir) if name.endswith(".sqlite3")]
    written = {"identity.key", "identity.txt", "contacts.txt", "presence-seq", "client.log", history}
    running = modes(alice_dir)  # SQLite's -wal and -shm exist only while the history is open
    assert written | {history + "-wal", history + "-shm"} <= set(running)
    assert alice.quit() == 0 and bob.quit() == 0
    after = modes(alice_dir)
    assert written | {"dht-state.json"} <= set(after)
    for seen in (running, after, modes(bob_dir)):
        assert {name: oct(mode) for name, mode in seen.items() if mode != 0o600} == {}
    for data_dir in (alice_dir, bob_dir):
        assert stat.S_IMODE(os.stat(data_dir).st_mode) == 0o700
    assert not [line for line in alice.stderr_lines + bob.stderr_lines if line.startswith("warning: ")]


def test_first_start_at_a_terminal_asks_for_the_username(tmp_path, procs):
    carol = procs.spawn(client_argv(tmp_path / "carol"), pty_mode=True, name="carol")
    carol.send_line("carol")  # answers "Choose a username: "
    carol.expect(r"you are carol; your contact card")
    carol.expect(r"^kadchat: you are carol;")
    assert carol.quit() == 0
    assert (tmp_path / "carol" / "identity.txt").read_text().splitlines()[-1].endswith(" carol")


def test_receiver_killed_mid_conversation_loses_nothing_acknowledged_and_shows_nothing_twice(tmp_path, procs):
    _, server = procs.server()
    people = friends(tmp_path, ["alice", "bob"])
    alice_dir, bob_dir = people["alice"][0], people["bob"][0]
    fast_refresh(alice_dir, bob_dir)
    alice = procs.client(alice_dir, "-r", bootstrap=server)
    bob = procs.client(bob_dir, "-r", bootstrap=server, interface="127.0.0.2")
    alice.expect(presence("bob", "connected"), timeout=20)

    alice.send_line("/msg bob before 0")
    bob.expect(received("alice", "before 0"), timeout=15)
    alice.expect(state("delivered", "bob"), timeout=15)
    burst = [f"burst {i}" for i in range(20)]
    for text in burst:
        alice.send_line(f"/msg bob {text}")
    bob.expect(received("alice", "burst 9"), timeout=15)
    bob.kill()  # in the middle of the burst
    shown_before = texts_from(bob, "alice")
    delivered_before = len(alice.seen(state("delivered", "bob")))
    stored_before = [text for _, text, _ in history_rows(bob_dir)]

    while_down = ["while down 1", "while down 2"]
    for text in while_down:
        alice.send_line(f"/msg bob {text}")
    time.sleep(1)
    bob = procs.client(bob_dir, "-r", bootstrap=server, interface="127.0.0.2")  # at a new port
    for text in while_down:
        bob.expect(received("alice", text), timeout=30)
    everything = ["before 0", *burst, *while_down]
    deadline = time.monotonic() + 20
    while len(alice.seen(state("delivered", "bob"))) < len(everything) and time.monotonic() < deadline:
        time.sleep(0.2)
    bob.send_line("/msg alice I am back")
    alice.expect(received("bob", "I am back"), timeout=15)
    assert bob.quit() == 0
    assert alice.quit() == 0

    shown_after = texts_from(bob, "alice")
    shown = shown_before + shown_after
    assert len(shown) == len(set(shown)), f"shown twice: {shown}"
    assert shown[-2:] == while_down  # the outbox kept alice's order
    stored = history_rows(bob_dir)
    incoming = [text for outgoing, text, _ in stored if not outgoing]
    assert sorted(incoming) == sorted(everything)  # each exactly once
    assert set(stored_before) <= set(incoming)
    assert 1 <= delivered_before <= len(stored_before) < len(everything)  # "delivered" meant "stored"
    assert len(alice.seen(state("delivered", "bob"))) == len(everything)
    assert [text for _, text, s in history_rows(alice_dir) if s != "received"] == everything
    assert {s for outgoing, _, s in history_rows(alice_dir) if outgoing} == {"delivered"}


def test_clean_quit_publishes_offline_to_contacts_within_seconds(tmp_path, procs):
    _, server = procs.server()
    people = friends(tmp_path, ["alice", "bob"])
    fast_refresh(people["alice"][0])
    alice = procs.client(people["alice"][0], "-r", bootstrap=server)
    bob = procs.client(people["bob"][0], bootstrap=server, interface="127.0.0.2")
    alice.expect(presence("bob", "connected"), timeout=20)
    assert bob.quit() == 0
    quit_at = time.monotonic()
    alice.expect(presence("bob", "offline"), timeout=10)
    assert time.monotonic() - quit_at < 5
    assert alice.quit() == 0


def test_without_any_reachable_bootstrap_node_the_client_keeps_running_and_retrying(tmp_path, procs):
    make_identity(tmp_path / "alice", "alice")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as nobody:
        nobody.bind(("127.0.0.1", 0))  # a port where nothing answers
        alice = procs.spawn(client_argv(tmp_path / "alice", bootstrap=nobody.getsockname(), log=False))
        alice.expect(r"^listening on ")
        tried = "127.0.0.1:%d" % nobody.getsockname()[1]
        said = f"warning: cannot reach the network: no answer from {tried}; trying again every 10 s"
        deadline = time.monotonic() + 30
        while said not in alice.stderr_lines and time.monotonic() < deadline:
            time.sleep(0.2)
        assert said in alice.stderr_lines, alice.describe()
        time.sleep(11)  # a retry: still running, and not said again
    assert alice.alive()
    assert alice.stderr_lines == [said], alice.describe()  # one line, no raw log lines
    alice.send_line("/status")
    alice.expect(r"^DHT peers: 0; External address: unknown; Reachability: unknown$")
    assert alice.quit() == 0
    assert not [line for line in alice.stderr_lines if "Traceback" in line]


def test_a_bootstrap_node_given_with_flags_is_saved_once_it_answered_and_used_without_them(tmp_path, procs):
    _, server = procs.server()
    make_identity(tmp_path / "alice", "alice")
    alice = procs.client(tmp_path / "alice", bootstrap=server)
    saved = tmp_path / "alice" / "bootstrap.txt"
    deadline = time.monotonic() + 20
    while not saved.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert saved.read_text().splitlines()[1:] == [f"{server[0]} {server[1]}"]
    assert alice.quit() == 0
    (tmp_path / "alice" / "dht-state.json").unlink()  # only bootstrap.txt can lead it in now
    again = procs.client(tmp_path / "alice")
    peers, deadline = 0, time.monotonic() + 20
    while not peers and time.monotonic() < deadline:
        time.sleep(0.5)
        again.send_line("/status")
        peers = int(again.expect(r"^DHT peers: (\d+);")[1])
    assert peers >= 1, again.describe()
    assert again.quit() == 0
    assert saved.read_text().splitlines()[1:] == [f"{server[0]} {server[1]}"]  # not twice


def test_a_second_client_on_the_same_data_directory_is_refused_and_a_killed_one_blocks_nothing(tmp_path, procs):
    data_dir = tmp_path / "alice"
    make_identity(data_dir, "alice")
    first = procs.client(data_dir)
    code, stderr = run_client(data_dir)
    assert (code, stderr) == (1, [f"error: another kadchat client is using {data_dir}"])
    assert first.alive()
    first.send_line("/card")  # still in charge, and still answering
    first.expect(r"^kc1\S+$")
    first.kill()  # no clean exit: the kernel alone releases the lock
    again = procs.client(data_dir)
    assert again.quit() == 0


# -- bad input: one `error:` line, non-zero exit, no traceback ----------------------

def run_client(data_dir, *args, timeout=20):
    """client_node.py -N with stdin not a terminal; (exit code, stderr lines)."""
    result = subprocess.run(
        [sys.executable, CLIENT, "-N", "--data-dir", str(data_dir), "--interface", "127.0.0.1", *args],
        cwd=ROOT, env=CHILD_ENV, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    return result.returncode, result.stderr.splitlines()


def assert_one_error_line(code, stderr, *fragments):
    assert code != 0
    assert len(stderr) == 1 and stderr[0].startswith("error: "), stderr
    for fragment in fragments:
        assert fragment in stderr[0]


def test_unknown_flag_is_one_error_line_with_exit_2(tmp_path):
    code, stderr = run_client(tmp_path, "--name", "alice", "--frobnicate")
    assert_one_error_line(code, stderr, "--frobnicate")
    assert code == 2


def test_bootstrap_host_without_port_is_refused(tmp_path):
    code, stderr = run_client(tmp_path, "--name", "alice", "-I", "127.0.0.1")
    assert_one_error_line(code, stderr, "-I and -P go together")
    assert code == 2


def test_a_port_in_use_is_one_error_line(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        code, stderr = run_client(tmp_path, "--name", "alice", "-p", str(port))
    assert_one_error_line(code, stderr, f"cannot listen on UDP port {port}")


def test_first_start_without_a_terminal_needs_a_name(tmp_path):
    code, stderr = run_client(tmp_path)
    assert_one_error_line(code, stderr, "--name")
    assert not (tmp_path / "identity.txt").exists()


def test_a_key_file_others_can_read_is_refused(tmp_path):
    make_identity(tmp_path, "alice")
    os.chmod(tmp_path / "identity.key", 0o644)
    code, stderr = run_client(tmp_path)
    assert_one_error_line(code, stderr, "identity.key", "chmod 600")


def test_a_data_directory_open_to_other_users_is_one_warning_line(tmp_path):
    make_identity(tmp_path, "alice")
    os.chmod(tmp_path, 0o755)
    code, stderr = run_client(tmp_path)
    assert code == 0
    assert [line for line in stderr if "open to other users" in line] == [f"warning: {tmp_path} is open to other users (mode 0755) and holds your conversations "
                      f"and contacts; fix it with: chmod 700 {tmp_path}"]


def test_a_presence_seq_file_of_the_former_format_is_taken_over_silently(tmp_path):
    """A lone number (seq was the publish time before issue 12): per-epoch values are above it."""
    make_identity(tmp_path, "alice")
    (tmp_path / "presence-seq").write_text(f"{2**63 - 1}\n")
    code, stderr = run_client(tmp_path)
    assert code == 0
    assert [line for line in stderr if "presence-seq" in line] == []


def test_a_corrupted_presence_seq_file_is_reset_with_one_warning_line(tmp_path):
    make_identity(tmp_path, "alice")
    (tmp_path / "presence-seq").write_bytes(b"\x00\x17garbage")
    code, stderr = run_client(tmp_path)
    assert code == 0
    assert [line for line in stderr if "presence-seq" in line] == [
        f"warning: {tmp_path / 'presence-seq'} did not hold sequence numbers; they start again from the clock"]
    rows = [line.split() for line in (tmp_path / "presence-seq").read_text().splitlines()]
    assert all(len(row) == 2 and all(field.isdigit() for field in row) for row in rows)


def test_a_garbage_key_file_is_refused(tmp_path):
    make_identity(tmp_path, "alice")
    (tmp_path / "identity.key").write_text("not a key\n")
    code, stderr = run_client(tmp_path)
    assert_one_error_line(code, stderr, "identity.key")


def test_a_garbage_identity_file_is_refused(tmp_path):
    make_identity(tmp_path, "alice")
    (tmp_path / "identity.txt").write_bytes(b"\xff\xfe garbage \x00\n")
    code, stderr = run_client(tmp_path)
    assert_one_error_line(code, stderr, "identity.txt")


@pytest.mark.parametrize("line, complaint", [
    ("port = lots", "kadchat.conf:2: port"),
    ("colour = blue", "kadchat.conf:2: unknown setting 'colour'"),
    ("just words", "kadchat.conf:2: expected 'key = value'"),
])
def test_a_bad_config_line_is_one_error_line_naming_it(tmp_path, line, complaint):
    make_identity(tmp_path, "alice")
    (tmp_path / "kadchat.conf").write_text(f"# settings\n{line}\n")
    code, stderr = run_client(tmp_path)
    assert_one_error_line(code, stderr, complaint)


def test_bad_contact_and_bootstrap_lines_are_warnings_and_the_client_runs(tmp_path, procs):
    make_identity(tmp_path / "alice", "alice")
    write_contacts(tmp_path / "alice", {"bob": "kc1notacard"})
    (tmp_path / "alice" / "bootstrap.txt").write_text("127.0.0.1 notaport\n")
    alice = procs.spawn(client_argv(tmp_path / "alice", log=False))
    alice.expect(r"^kadchat: you are alice;")
    assert alice.quit() == 0
    warnings = [line for line in alice.stderr_lines if line.startswith("warning: ")]
    assert any(w.startswith("warning: contacts.txt:1:") or "contacts.txt:1:" in w for w in warnings), warnings
    assert any("bootstrap.txt:1:" in w for w in warnings), warnings
    assert not [line for line in alice.stderr_lines if "Traceback" in line]


def test_the_dedicated_server_is_an_introducer_and_reports_it_in_its_status_line(tmp_path, procs):
    server, address = procs.server(log=tmp_path / "server.log")
    tag = owned_tag(b"T")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.bind(("127.0.0.1", 0))
        client.settimeout(5)
        client.sendto(b"", address)
        client.sendto(bytes([natwire.REGISTER]) + b"short", address)  # malformed: ignored
        client.sendto(natwire.encode(signed(tag)), address)
        reply = natwire.decode(client.recvfrom(2048)[0])
        assert (reply.tag, reply.observed) == (tag, client.getsockname())
        client.sendto(natwire.encode(signed(tag, reply.cookie)), address)  # the round trip
        assert natwire.decode(client.recvfrom(2048)[0]) == reply
    deadline = time.monotonic() + 5
    while "registered 1, introduced 0, relayed 0 bytes" not in (tmp_path / "server.log").read_text():
        assert time.monotonic() < deadline, (tmp_path / "server.log").read_text()
        time.sleep(0.2)
    assert server.alive()
    assert "Traceback" not in (tmp_path / "server.log").read_text()


def test_both_writing_first_at_the_same_moment_deliver_both_ways(tmp_path, procs):
    _, server = procs.server()
    people = friends(tmp_path, ["alice", "bob"])
    fast_refresh(people["alice"][0], people["bob"][0])
    alice = procs.client(people["alice"][0], "-r", bootstrap=server)
    bob = procs.client(people["bob"][0], "-r", bootstrap=server, interface="127.0.0.2")
    alice.expect(presence("bob", "connected"), timeout=20)
    bob.expect(presence("alice", "connected"), timeout=20)
    for i in range(3):  # both initiate a handshake at once: the crossing must not lose either side
        alice.send_line(f"/msg bob from alice {i}")
        bob.send_line(f"/msg alice from bob {i}")
    for i in range(3):
        bob.expect(received("alice", f"from alice {i}"), timeout=15)
        alice.expect(received("bob", f"from bob {i}"), timeout=15)
    for me, other in ((alice, "bob"), (bob, "alice")):
        deadline = time.monotonic() + 15
        while len(me.seen(state("delivered", other))) < 3:
            assert time.monotonic() < deadline, me.describe()
            time.sleep(0.2)
    assert texts_from(bob, "alice") == [f"from alice {i}" for i in range(3)]
    assert texts_from(alice, "bob") == [f"from bob {i}" for i in range(3)]
    assert alice.quit() == 0 and bob.quit() == 0


def test_after_a_restart_last_seen_is_not_older_than_the_last_message_received(tmp_path, procs):
    from kadchat.cards import decode_card
    from kadchat.history import History, StoredMessage, history_path
    from kadchat.model import MessageState

    people = friends(tmp_path, ["alice", "bob"])
    alice_dir, alice_card = people["alice"]
    received_at = time.time() - 120
    history = History(history_path(alice_dir, decode_card(alice_card)))
    message_id = os.urandom(16)
    history.store_incoming(StoredMessage(message_id, decode_card(people["bob"][1]), False, 1, "bye for now",
                                         received_at, MessageState.HELD), [message_id], 2)
    history.close()
    alice = procs.client(alice_dir)  # bob is not running: offline, never seen this run
    alice.send_line("/contacts")
    alice.expect(rf"bob.*last seen {time.strftime('%H:%M', time.localtime(received_at))}")
    assert alice.quit() == 0
