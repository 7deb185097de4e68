"""The DHT across NATs: a dedicated server on the public network, two nodes each
behind its own NAT router (one consistent, one random). Needs root (skips
otherwise, fails on CI)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from tests.netns import lab  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.netns, pytest.mark.timeout(40)]

ROOT = Path(__file__).resolve().parents[1]
NODE_SCRIPT = ROOT / "tests" / "netns_dht_node.py"
SERVER_PORT = 6881
SEED = "11" * 32  # the putter's ed25519 seed


def start_server(lab, host):
    server = lab.run(host, [sys.executable, str(ROOT / "dedicated_server.py"),
                            "-p", str(SERVER_PORT), "--host", host.address], cwd=ROOT)
    server.expect(rf"listening on {host.address}:{SERVER_PORT}", timeout=10)
    return server


def start_node(lab, host, server_host):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return lab.run(host, [sys.executable, str(NODE_SCRIPT), "--bind", host.address,
                          "--bootstrap", f"{server_host.address}:{SERVER_PORT}"],
                   cwd=ROOT, env=env, stdin=subprocess.PIPE)


def event(process, name, timeout):
    return process.read_json(timeout, lambda obj: obj.get("event") == name)


def events_seen(process, name):
    return [e for e in process.json_lines() if e.get("event") == name]


def test_nodes_behind_two_nats_join_learn_their_public_address_and_share_an_item(lab):
    server_host = lab.add_public_host("server")
    nat_a = lab.add_nat("nat-a", "consistent")
    nat_b = lab.add_nat("nat-b", "random")
    alice = lab.add_private_host("alice", nat_a)
    bob = lab.add_private_host("bob", nat_b)
    start_server(lab, server_host)
    node_a = start_node(lab, alice, server_host)
    assert event(node_a, "joined", timeout=10)["routing_table"] >= 1
    node_b = start_node(lab, bob, server_host)
    assert event(node_b, "joined", timeout=10)["routing_table"] >= 1

    node_a.send_line(json.dumps({"put": {"seed": SEED, "v": "hello from alice", "seq": 7}}))
    put = event(node_a, "put", timeout=10)
    public_key = bytes(SigningKey(bytes.fromhex(SEED)).verify_key).hex()
    node_b.send_line(json.dumps({"get": {"public_key": public_key}}))
    got = event(node_b, "got", timeout=10)

    assert put["accepted"] >= 1  # at least the server stored it
    assert got["target"] == put["target"]
    assert got["item"] == {"seq": 7, "v": "hello from alice"}
    for node, nat in ((node_a, nat_a), (node_b, nat_b)):
        votes = events_seen(node, "vote")
        assert [server_host.address, SERVER_PORT] in [v["responder"] for v in votes]
        assert {v["seen"][0] for v in votes} == {nat.address}  # never the private address
    # The consistent NAT kept alice's own port, so her vote is her whole public mapping.
    alice_port = events_seen(node_a, "listening")[0]["address"][1]
    assert [nat_a.address, alice_port] in [v["seen"] for v in events_seen(node_a, "vote")]
