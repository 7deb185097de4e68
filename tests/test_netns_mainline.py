"""Mainline mode across NATs, with no server of our own in the clients'
configuration: libtorrent sessions on three public hosts stand in for Mainline
(tests/netns_libtorrent.py; KADCHAT_MAINLINE_ROUTERS points the clients at
them), and a dedicated_server.py --mainline on a fourth public host announces
itself under the introducers' info-hash. alice and bob, each behind a NAT
router and started without any bootstrap node, find that introducer with
get_peers alone, and chat: hole-punched through consistent NATs, relayed by it
when a NAT is random. As in test_netns_chat.py, the routers drop KRPC
datagrams between the two clients, so only NAT traversal opens the way. Needs
root (skips otherwise, fails on CI)."""

import subprocess
import sys

import pytest

from kadchat.network_mode import ROUTERS_ENV
from tests.client_helpers import CHILD_ENV, CLIENT, ROOT, SERVER, chat_both_ways, friends, wait_for
from tests.netns import lab  # noqa: F401 (a fixture)
from tests.test_dht_libtorrent import lt
from tests.test_netns_chat import route, server_counts

pytestmark = [pytest.mark.netns, pytest.mark.slow, pytest.mark.timeout(120),  # about 35 s each
              pytest.mark.skipif(lt is None, reason="libtorrent's Python bindings are not installed")]

SERVER_PORT = 6881
HELPER = str(ROOT / "tests" / "netns_libtorrent.py")


def foreign_nodes(lab, count=3):
    """libtorrent sessions on `count` public hosts; the KADCHAT_MAINLINE_ROUTERS value for them."""
    nodes = []
    for n in range(count):
        host = lab.add_public_host(f"dht{n}")
        joins = [arg for node in nodes for arg in ("--join", node)]
        helper = lab.run(host, [sys.executable, HELPER, "--bind", host.address, *joins], stdin=subprocess.PIPE)
        nodes += helper.read_json(10, lambda obj: "nodes" in obj)["nodes"]
    return nodes


def only_traversal_between_clients(lab, nat, public_hosts):
    """`nat` forwards no KRPC datagram (first payload byte `d`) unless a public host is part of it."""
    hosts = "{ " + ", ".join(h.address for h in public_hosts) + " }"
    for command in (
        "add table ip kadchat_test_nodht",
        "add chain ip kadchat_test_nodht forward { type filter hook forward priority -1 ; policy accept ; }",
        f"add rule ip kadchat_test_nodht forward ip saddr != {hosts} ip daddr != {hosts} "
        "meta l4proto udp @th,64,8 0x64 drop",
    ):
        lab.call(nat, ["nft", command])


def start_client(lab, host, data_dir, env):
    (data_dir / "kadchat.conf").write_text("refresh = true\nrefresh_interval = 1\n")
    argv = [sys.executable, CLIENT, "-N", "--data-dir", str(data_dir), "-l", str(data_dir / "client.log")]
    client = lab.run(host, argv, cwd=ROOT, stdin=subprocess.PIPE, env=env)
    client.expect(r"^listening on ", timeout=10)
    return client


def setup(lab, tmp_path, mode_a, mode_b):
    routers = ",".join(foreign_nodes(lab))
    env = dict(CHILD_ENV, **{ROUTERS_ENV: routers})
    carol = lab.add_public_host("carol")
    server = lab.run(carol, [sys.executable, SERVER, "-p", str(SERVER_PORT), "--host", carol.address,
                             "--mainline", "--status-interval", "1"], cwd=ROOT, env=env)
    server.expect(rf"listening on {carol.address}:{SERVER_PORT}", timeout=10)
    public = [h for name, h in lab.hosts.items() if name.startswith("dht") or name == "carol"]
    nat_a, nat_b = lab.add_nat("nat-a", mode_a), lab.add_nat("nat-b", mode_b)
    for nat in (nat_a, nat_b):
        only_traversal_between_clients(lab, nat, public)
    people = friends(tmp_path, ["alice", "bob"])
    alice = start_client(lab, lab.add_private_host("alice", nat_a), people["alice"][0], env)
    bob = start_client(lab, lab.add_private_host("bob", nat_b), people["bob"][0], env)
    return server, alice, bob, people


def introducers_found(people, name):
    """Whether `name` found the introducer with get_peers: waited for, since a client may
    first reach the other through the other's introducer, before its own search succeeds."""
    log = people[name][0] / "client.log"
    return wait_for(f"{name}'s get_peers to find the introducer",
                    lambda: "introducers: 1 of 1 announced" in log.read_text(), timeout=40)


def test_behind_consistent_nats_clients_punch_through_an_introducer_found_with_get_peers(lab, tmp_path):
    server, alice, bob, people = setup(lab, tmp_path, "consistent", "consistent")
    chat_both_ways(alice, bob, timeout=60)
    assert route(alice, "bob") == "connected, direct"
    assert introducers_found(people, "alice") and introducers_found(people, "bob")
    registered, introduced, relayed, _ = server_counts(server)
    assert registered >= 2 and introduced >= 1 and relayed == 0


def test_with_a_random_nat_the_introducer_found_with_get_peers_relays(lab, tmp_path):
    server, alice, bob, people = setup(lab, tmp_path, "consistent", "random")
    chat_both_ways(alice, bob, timeout=60)
    assert route(alice, "bob") == "connected, relayed"
    assert server_counts(server)[2] > 0
