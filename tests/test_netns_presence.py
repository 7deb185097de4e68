"""Live presence across NATs (issue 11), with DEFAULT settings (no -r): a dedicated
server on the public network, alice and bob each behind their own NAT router
(tests.netns; the lab of tests/test_netns_chat.py, whose routers pass no KRPC
between the clients). Consistent NATs are hole-punched, random ones relayed;
either way contacts see each other connected at start, a clean quit as offline,
a restart as connected again, and a message queued meanwhile arrives on return.
Needs root (skips otherwise, fails on CI)."""

import time

import pytest

from tests.client_helpers import presence, received, seconds_until, state
from tests.netns import lab  # noqa: F401 (a fixture)
from tests.test_netns_chat import route, server_counts, setup as nat_lab, start_client

pytestmark = [pytest.mark.netns, pytest.mark.timeout(90)]

# Generous bounds: the relay is tried only after 3 s of hole punching (reachability.PUNCH_GRACE).
CONNECTED_WITHIN = 8.0
OFFLINE_AFTER_QUIT_WITHIN = 5.0
RESTARTED_CONNECTED_WITHIN = 10.0
QUEUED_DELIVERED_WITHIN = 10.0


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
    alice.expect(state("(?:sending|sent)", "bob"))

    back = time.monotonic()
    bob = start_client(lab, lab.hosts["bob"], tmp_path / "bob", lab.hosts["server"], fast_refresh=False)
    took_back = seconds_until(alice, presence("bob", "connected"), back, RESTARTED_CONNECTED_WITHIN)
    took_message = seconds_until(bob, received("alice", "while you were out"), back, QUEUED_DELIVERED_WITHIN)
    alice.expect(state("delivered", "bob"), timeout=QUEUED_DELIVERED_WITHIN)
    assert route(alice, "bob") == f"connected, {path}"
    relayed = server_counts(server)[2]
    assert relayed == 0 if path == "direct" else relayed > 0
    print(f"\n{mode} NATs: connected {took:.2f} s after the start, offline {took_offline:.2f} s after /quit, "
          f"connected {took_back:.2f} s after the restart, queued message in {took_message:.2f} s")
