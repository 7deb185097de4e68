"""Chat across NATs: a dedicated server on the public network, alice and bob
each behind their own NAT router, running client_node.py -N -r. Needs root
(skips otherwise, fails on CI).

Consistent NATs (endpoint-independent mapping) must be punched through: the
session goes direct and the server relays nothing. Random NATs (a new port per
destination) cannot be punched: the server relays the sealed datagrams.

In a three-node swarm alice and bob would also be each other's DHT contacts,
and their DHT queries to each other would open both NATs before any chat
starts. In a real swarm two contacts rarely are; so the routers here drop
KRPC datagrams (first payload byte `d`) that do not involve the server, and
only the NAT traversal itself can open the way."""

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from tests.client_helpers import CLIENT, ROOT, SERVER, chat_both_ways, friends, presence, received, state, undelivered
from tests.netns import lab  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.netns, pytest.mark.timeout(60)]

SERVER_PORT = 6881
STATUS = re.compile(r"registered (\d+), introduced (\d+), relayed (\d+) bytes, refused (\d+)")


def start_server(lab, host):
    server = lab.run(host, [sys.executable, SERVER, "-p", str(SERVER_PORT),
                            "--host", host.address, "--status-interval", "1"], cwd=ROOT)
    server.expect(rf"listening on {host.address}:{SERVER_PORT}", timeout=10)
    return server


def start_client(lab, host, data_dir, server_host, fast_refresh=True, settings=()):
    """client_node.py -N in `host`; `fast_refresh`: -r, looking contacts up every second;
    `settings`: more kadchat.conf lines."""
    fast = ["-r"] if fast_refresh else []
    lines = [*(["refresh_interval = 1"] if fast_refresh else []), *settings]
    (data_dir / "kadchat.conf").write_text("".join(f"{line}\n" for line in lines))
    argv = [sys.executable, CLIENT, "-N", *fast, "-I", server_host.address, "-P", str(SERVER_PORT),
            "--data-dir", str(data_dir), "-l", str(data_dir / "client.log")]
    client = lab.run(host, argv, cwd=ROOT, stdin=subprocess.PIPE)
    client.expect(r"^listening on ", timeout=10)
    return client


def no_dht_between_clients(lab, nat, server_host):
    """`nat` forwards no KRPC datagram (first payload byte `d`) that the server is not part of."""
    server = server_host.address
    for command in (
        "add table ip kadchat_test_nodht",
        "add chain ip kadchat_test_nodht forward { type filter hook forward priority -1 ; policy accept ; }",
        f"add rule ip kadchat_test_nodht forward ip saddr != {server} ip daddr != {server} "
        "meta l4proto udp @th,64,8 0x64 drop",
    ):
        lab.call(nat, ["nft", command])


def server_counts(server, timeout=5.0):
    """(registered, introduced, relayed bytes, refused) from a status line the
    server logged after this call (it logs one a second)."""
    seen = len(STATUS.findall(server.stderr_text()))
    deadline = time.monotonic() + timeout
    while True:
        found = STATUS.findall(server.stderr_text())
        if len(found) >= seen + 2:  # the first may have been half written
            return tuple(int(n) for n in found[-1])
        assert time.monotonic() < deadline, server.describe()
        time.sleep(0.2)


def route(client, name):
    client.send_line("/contacts")
    return client.expect(rf"^{name}: (.*)$", timeout=5)[1]


def setup(lab, tmp_path, mode_a, mode_b, fast_refresh=True, settings=()):
    server_host = lab.add_public_host("server")
    nat_a, nat_b = lab.add_nat("nat-a", mode_a), lab.add_nat("nat-b", mode_b)
    for nat in (nat_a, nat_b):
        no_dht_between_clients(lab, nat, server_host)
    alice_host = lab.add_private_host("alice", nat_a)
    bob_host = lab.add_private_host("bob", nat_b)
    people = friends(tmp_path, ["alice", "bob"])
    server = start_server(lab, server_host)
    alice = start_client(lab, alice_host, people["alice"][0], server_host, fast_refresh, settings)
    bob = start_client(lab, bob_host, people["bob"][0], server_host, fast_refresh, settings)
    return server, alice, bob


def test_behind_two_consistent_nats_the_chat_is_hole_punched_and_never_relayed(lab, tmp_path):
    server, alice, bob = setup(lab, tmp_path, "consistent", "consistent")
    chat_both_ways(alice, bob)
    assert route(alice, "bob") == "connected, direct"
    assert route(bob, "alice") == "connected, direct"
    registered, introduced, relayed, _ = server_counts(server)
    assert relayed == 0
    assert introduced >= 1  # a direct send alone cannot pass the other side's NAT


@pytest.mark.parametrize("modes", [("random", "random"), ("consistent", "random")],
                         ids=["two-random-nats", "one-random-nat"])
def test_with_a_random_nat_the_chat_goes_through_the_relay(lab, tmp_path, modes):
    server, alice, bob = setup(lab, tmp_path, *modes)
    chat_both_ways(alice, bob)
    assert route(alice, "bob") == "connected, relayed"
    assert route(bob, "alice") == "connected, relayed"
    assert server_counts(server)[2] > 0


def test_behind_consistent_nats_both_writing_first_at_once_still_goes_direct(lab, tmp_path):
    server, alice, bob = setup(lab, tmp_path, "consistent", "consistent")
    alice.expect(presence("bob", "connected"), timeout=20)
    bob.expect(presence("alice", "connected"), timeout=20)
    alice.send_line("/msg bob hi from alice")
    bob.send_line("/msg alice hi from bob")  # both punch at once
    bob.expect(received("alice", "hi from alice"), timeout=20)
    alice.expect(received("bob", "hi from bob"), timeout=20)
    alice.expect(state("delivered", "bob"), timeout=10)
    bob.expect(state("delivered", "alice"), timeout=10)
    assert route(alice, "bob") == "connected, direct"
    assert route(bob, "alice") == "connected, direct"
    assert server_counts(server)[2] == 0


def test_a_killed_client_behind_a_nat_gets_what_was_sent_meanwhile_once_back(lab, tmp_path):
    server, alice, bob = setup(lab, tmp_path, "consistent", "consistent")
    chat_both_ways(alice, bob)
    os.killpg(bob.pid, signal.SIGKILL)  # no goodbye, no offline record: alice still thinks bob is connected
    bob.popen.wait(5)
    alice.send_line("/msg bob are you there?")
    alice.expect(undelivered("bob"), timeout=5)
    bob = start_client(lab, lab.hosts["bob"], tmp_path / "bob", lab.hosts["server"])  # a new port and mapping
    bob.expect(received("alice", "are you there?"), timeout=30)
    alice.expect(state("delivered", "bob"), timeout=10)
    assert route(alice, "bob") == "connected, direct"
    assert server_counts(server)[2] == 0
