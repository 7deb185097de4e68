"""The console without a terminal: a script's lines piped into a real client process."""

import subprocess

from tests.client_helpers import CHILD_ENV, ROOT, client_argv, friends, presence, procs, received  # noqa: F401


def test_a_piped_script_opens_a_conversation_by_a_name_with_spaces_and_writes_plain_text(tmp_path, procs):  # noqa: F811
    _, server = procs.server()
    dirs = friends(tmp_path, ["alice", "Ben Big"])
    ben = procs.client(dirs["Ben Big"][0], "-r", bootstrap=server, interface="127.0.0.2")
    script = "/open Ben\nhello ben\n//slash and all\n/history 5\n"
    alice = subprocess.run(client_argv(dirs["alice"][0], "-r", bootstrap=server), input=script.encode(),
                           capture_output=True, cwd=ROOT, env=CHILD_ENV, timeout=60)
    ben.expect(received("alice", "hello ben"), timeout=20)
    ben.expect(received("alice", "/slash and all"), timeout=20)
    lines = alice.stdout.decode().splitlines()
    assert alice.returncode == 0, lines
    assert "* talking to Ben Big: lines not starting with / go there" in lines
    assert "-- the last 2 messages with Ben Big --" in lines
    assert not [line for line in lines if line.startswith("error:") or " you to " in line]  # no echo here
    assert "Traceback" not in alice.stderr.decode()
