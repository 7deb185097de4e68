"""File transfer across lossy links and relays, in a netns lab (tests/netns.py; needs root,
skips otherwise): client_node.py -N processes and a dedicated server (issue 16)."""

import hashlib
import os
from pathlib import Path

import pytest

from tests.client_helpers import friends, presence
from tests.netns import lab  # noqa: F401 (a fixture)
from tests.test_netns_chat import no_dht_between_clients, route, setup, start_client, start_server

pytestmark = [pytest.mark.netns, pytest.mark.timeout(150)]

OFFER = r"^\* alice offers (.+) \((.+)\) as #(\d+); /accept \d+$"


def sha(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_with_20_percent_loss_each_way_the_file_arrives_intact(lab, tmp_path):
    server_host = lab.add_public_host("server")
    alice_host, bob_host = lab.add_public_host("alice"), lab.add_public_host("bob")
    people = friends(tmp_path, ["alice", "bob"])
    start_server(lab, server_host)
    alice = start_client(lab, alice_host, people["alice"][0], server_host)
    bob = start_client(lab, bob_host, people["bob"][0], server_host,
                       settings=[f"downloads = {tmp_path / 'dl'}"])
    alice.expect(presence("bob", "connected"), timeout=30)
    bob.expect(presence("alice", "connected"), timeout=30)
    lab.loss(bob_host, 0.2)  # in and out: a datagram and its ack each cross it
    source = tmp_path / "lossy.bin"
    source.write_bytes(os.urandom(1024 * 1024))
    alice.send_line(f"/send bob {source}")
    bob.send_line(f"/accept {bob.expect(OFFER, timeout=30)[3]}")
    path = bob.expect(r"^\* received lossy.bin from alice: (.+)$", timeout=120)[1]
    assert sha(path) == sha(source)
    alice.expect(r"^\* sent lossy.bin to bob$", timeout=30)


def test_through_a_relay_a_big_file_is_refused_a_small_one_goes(lab, tmp_path):
    server, alice, bob = setup(lab, tmp_path, "random", "random", settings=[f"downloads = {tmp_path / 'dl'}"])
    alice.expect(presence("bob", "connected"), timeout=30)
    bob.expect(presence("alice", "connected"), timeout=30)
    assert route(alice, "bob") == "connected, relayed"
    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        f.truncate(11 * 1000 * 1000)
    alice.send_line(f"/send bob {big}")
    alice.expect(r"^error: 11.0 MB is over the 10.0 MB cap for relayed transfers$", timeout=10)
    small = tmp_path / "small.bin"
    small.write_bytes(os.urandom(200_000))
    alice.send_line(f"/send bob {small}")
    bob.send_line(f"/accept {bob.expect(OFFER, timeout=30)[3]}")
    path = bob.expect(r"^\* received small.bin from alice: (.+)$", timeout=60)[1]
    assert sha(path) == sha(small)


def test_a_receiver_behind_a_relay_refuses_a_big_offer_unless_it_opted_in_too(lab, tmp_path):
    """alice opted in (relay_files = true), bob did not: bob declines the offer at once."""
    server_host = lab.add_public_host("server")
    nats = [lab.add_nat("nat-a", "random"), lab.add_nat("nat-b", "random")]
    for nat in nats:
        no_dht_between_clients(lab, nat, server_host)
    alice_host, bob_host = (lab.add_private_host(name, nat) for name, nat in zip(("alice", "bob"), nats))
    people = friends(tmp_path, ["alice", "bob"])
    start_server(lab, server_host)
    alice = start_client(lab, alice_host, people["alice"][0], server_host, settings=["relay_files = true"])
    bob = start_client(lab, bob_host, people["bob"][0], server_host, settings=[f"downloads = {tmp_path / 'dl'}"])
    alice.expect(presence("bob", "connected"), timeout=30)
    bob.expect(presence("alice", "connected"), timeout=30)
    assert route(alice, "bob") == "connected, relayed"
    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        f.truncate(11 * 1000 * 1000)
    alice.send_line(f"/send bob {big}")
    alice.expect(r"^\* offered big.bin \(11.0 MB\) to bob as #1$", timeout=10)
    bob.expect(r"^\* #1 big.bin cancelled: over the relay cap$", timeout=30)
    alice.expect(r"^\* #1 big.bin cancelled: over the relay cap \(by them\)$", timeout=30)
    assert not (tmp_path / "dl").exists()
