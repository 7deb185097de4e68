"""Issue 12: presence only for accepted contacts, revocable; contact requests for the rest.

Whole ChatServices on real loopback sockets (tests/contact_scenarios.py, a process
of its own) and a dedicated server process; each person on its own address.
"""

import json
import sys

import pytest

from tests.client_helpers import ROOT, procs  # noqa: F401 (procs: a fixture)
from tests.spoofing import can_spoof

pytestmark = pytest.mark.timeout(180)


def run(procs, scenario, tmp_path):
    _, server = procs.server()
    child = procs.spawn([sys.executable, str(ROOT / "tests" / "contact_scenarios.py"), scenario,
                         str(tmp_path), *map(str, server)], name=scenario)
    facts = {}
    while True:
        line = child.read_line(120.0)
        assert line is not None, child.describe()
        if line == "done":
            break
        if line.startswith("fact "):
            _, name, value = line.split(" ", 2)
            facts[name] = json.loads(value)
            print(name, value)
    assert child.wait() == 0
    return facts


@pytest.mark.slow  # ~30 s: five people, a removal, a restart
def test_only_contacts_locate_and_open_the_record_and_removal_cuts_them_off(tmp_path, procs):
    facts = run(procs, "privacy", tmp_path)
    assert facts["contacts_connected"] and facts["bob_holds_alice_secret"]
    # A stranger with her card: her request point, which names introducers and no address...
    assert facts["request_heard"] == [["charlie", True, "hi, it's charlie"]]
    assert not facts["charlie_holds_a_secret"] and not facts["charlie_connected"]
    point = facts["charlie_reads_request_point"]
    assert point["addrs"] == [] and point["introducers"] >= 1 and point["status"] == "online"
    # ... while the record her secret opens has her address (the secret is all he lacks).
    private = facts["the_secret_opens_her_record"]
    assert any(port == private["own_port"] for _, port in private["addrs"])
    # Removed: the old secret opens nothing but "offline"; dave got the new one over the session.
    assert facts["rotated"] and facts["dave_gets_the_new_secret"] and facts["bob_holds_only_the_old_secret"]
    old = facts["bob_reads_old_secret"]
    assert old is None or (old["status"] == "offline" and old["addrs"] == [])
    assert facts["bob_reads_request_point"]["addrs"] == []
    dave_reads = facts["dave_reads_new_secret"]
    assert any(port == dave_reads["own_port"] for _, port in dave_reads["addrs"])
    assert not facts["bob_connected_after_removal"] and facts["alice_refused_strangers"] >= 1
    assert facts["dave_still_connected"]
    # Offline at the removal, erin finds her way in through the request point and gets the new one.
    assert facts["erin_offline_holds_the_old_secret"] and facts["erin_connected_again"][0]
    assert facts["erin_gets_the_new_secret"]


@pytest.mark.slow  # ~20 s
def test_requests_are_accepted_ignored_and_blocked_end_to_end(tmp_path, procs):
    facts = run(procs, "requests", tmp_path)
    assert facts["requests"] == [["charlie", "charlie here"], ["mallory", "mallory here"], ["olivia", "olivia here"]]
    assert facts["listener_heard"] == ["charlie", "mallory", "olivia"]
    assert facts["accepted_connected"][0] and facts["accepted_secrets"] and facts["accepted_in_contacts_file"]
    assert facts["after_answers"] == []
    # Ignored, olivia may ask again; blocked, mallory's asks and handshakes reach nothing.
    assert facts["asked_again"] == ["olivia"] and facts["heard_after_answers"] == ["olivia"]
    assert facts["mallory_blocked_in_file"] and not facts["mallory_connected"]
    assert facts["mallory_handshakes_refused"] >= 1


def test_a_forged_unknown_session_is_ignored_and_a_restarted_peers_is_honoured(tmp_path, procs):
    if not can_spoof():
        pytest.skip("spoofing a source address needs raw sockets (root)")
    facts = run(procs, "resets", tmp_path)
    assert facts["connected"]
    assert facts["forged"] == {"forged_notices": 20, "honoured": 0, "handshakes_started": 0, "same_session": True}
    # bob restarted: his notice carries the token his identity gives, and the message gets through.
    assert facts["after_restart"]["delivered"] and facts["after_restart"]["honoured"] == 1
