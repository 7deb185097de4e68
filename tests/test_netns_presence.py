"""Live presence across NATs (issue 11), with DEFAULT settings (no -r): a dedicated
server on the public network, alice and bob each behind their own NAT router
(tests.netns; the lab of tests/test_netns_chat.py, whose routers pass no KRPC
between the clients). Consistent NATs are hole-punched, random ones relayed;
either way contacts see each other connected at start, a clean quit as offline,
a restart as connected again, and a message queued meanwhile arrives on return.
Needs root (skips otherwise, fails on CI)."""

import time

import pytest

from tests.client_helpers import presence, received, seconds_until, state, undelivered
from tests.netns import lab  # noqa: F401 (a fixture)
from tests.test_netns_chat import route, server_counts, setup as nat_lab, start_client

pytestmark = [pytest.mark.netns, pytest.mark.timeout(90)]

# Generous bounds. With one server neither side can tell its NAT class, so the relay
# joins after 1 s of hole punching (reachability.RELAY_SOON).
CONNECTED_WITHIN = 8.0
OFFLINE_AFTER_QUIT_WITHIN = 5.0
RESTARTED_CONNECTED_WITHIN = 10.0
QUEUED_DELIVERED_WITHIN = 10.0
# The outage test's clients are configured to give a silent contact up after 6 s, not 45.
QUICK_SILENCE = ("keepalive_interval = 2", "gone_after = 6")
OUTAGE_NOTICED_WITHIN = 15.0
AFTER_OUTAGE_CONNECTED_WITHIN = 45.0  # the next look-up (30 s), then a handshake


@pytest.mark.parametrize("mode, path", [("consistent", "direct"), ("random", "relayed")],
                         ids=["hole-punched", "relayed"])
def test_behind_nats_presence_follows_start_quit_and_return_with_the_queued_message(lab, tmp_path, mode, path):
    began = time.monotonic()
    server, alice, bob = nat_lab(lab, tmp_path, mode, mode, fast_refresh=False)
    took = max(seconds_until(alice, presence("bob", "connected"), began, CONNECTED_WITHIN),
               seconds_until(bob, presence("alice", "connected"), began, CONNECTED_WITHIN))
    assert route(alice, "bob") == f"connected, {path}"

    bob.send_line("/quit")
    quit_at = time.monotonic()
    took_offline = seconds_until(alice, presence("bob", "offline"), quit_at, OFFLINE_AFTER_QUIT_WITHIN)
    assert bob.popen.wait(15) == 0
    alice.send_line("/msg bob while you were out")
    alice.expect(undelivered("bob"))

    back = time.monotonic()
    bob = start_client(lab, lab.hosts["bob"], tmp_path / "bob", lab.hosts["server"], fast_refresh=False)
    took_back = seconds_until(alice, presence("bob", "connected"), back, RESTARTED_CONNECTED_WITHIN)
    took_message = seconds_until(bob, received("alice", "while you were out"), back, QUEUED_DELIVERED_WITHIN)
    alice.expect(state("delivered", "bob"), timeout=QUEUED_DELIVERED_WITHIN)
    assert route(alice, "bob") == f"connected, {path}"
    if path == "relayed":  # (punched: the relay may carry the first second before the punch wins)
        assert server_counts(server)[2] > 0
    print(f"\n{mode} NATs: connected {took:.2f} s after the start, offline {took_offline:.2f} s after /quit, "
          f"connected {took_back:.2f} s after the restart, queued message in {took_message:.2f} s")


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_after_an_outage_both_sides_saw_the_contacts_are_connected_again_without_a_restart(lab, tmp_path):
    # bob's link drops everything for the 6 s that make each side give the other up; once
    # it is back neither restarts, and their sessions are gone: only a look-up can bring
    # a new one (the next is due 30 s after the one that found bob unreachable).
    began = time.monotonic()
    server, alice, bob = nat_lab(lab, tmp_path, "consistent", "consistent", fast_refresh=False,
                                 settings=QUICK_SILENCE)
    seconds_until(alice, presence("bob", "connected"), began, CONNECTED_WITHIN)
    seconds_until(bob, presence("alice", "connected"), began, CONNECTED_WITHIN)
    lab.loss("bob", 1.0)
    down = time.monotonic()
    seconds_until(alice, presence("bob", "offline"), down, OUTAGE_NOTICED_WITHIN)
    seconds_until(bob, presence("alice", "offline"), down, OUTAGE_NOTICED_WITHIN)
    lab.loss("bob", 0)
    up = time.monotonic()
    took = max(seconds_until(alice, presence("bob", "connected"), up, AFTER_OUTAGE_CONNECTED_WITHIN),
               seconds_until(bob, presence("alice", "connected"), up, AFTER_OUTAGE_CONNECTED_WITHIN))
    alice.send_line("/msg bob welcome back")
    bob.expect(received("alice", "welcome back"), timeout=QUEUED_DELIVERED_WITHIN)
    print(f"\nafter the outage: connected again {took:.1f} s after the link came back")
