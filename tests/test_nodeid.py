"""kademlia.nodeid: BEP 42 node ids bound to IPv4 addresses, and what nodes do with
ids that do not fit."""

import pytest
from twisted.internet.task import Clock

from kademlia import nodeid
from kademlia.lookup import Lookup
from kademlia.settings import DHTSettings
from kademlia.node import DHTNode

# The BEP's own examples: (IP, random byte, first 20 bits of the id).
VECTORS = [("124.31.75.21", 1, "5fbfb"), ("21.75.31.124", 86, "5a3ce"),
           ("65.23.51.170", 22, "a5d43"), ("84.124.73.14", 65, "1b032"),
           ("43.213.53.83", 90, "e56f6")]


@pytest.mark.parametrize("ip, rand, prefix", VECTORS)
def test_ids_match_the_bep_42_examples_and_carry_their_random_byte_last(ip, rand, prefix):
    node_id = nodeid.node_id_for(ip, lambda n: bytes(n - 1) + bytes([rand]))
    assert node_id.hex()[:5] == prefix
    assert node_id[19] == rand
    assert nodeid.is_valid(node_id, ip)


def test_an_id_fits_only_its_own_address():
    node_id = nodeid.node_id_for("124.31.75.21", lambda n: bytes(range(n)))
    assert not nodeid.is_valid(node_id, "124.31.75.99")
    assert not nodeid.is_valid(bytes(20), "124.31.75.21")


def test_public_check_exempts_local_networks_and_all_checks_them():
    random_id = bytes(range(20))
    assert nodeid.acceptor("public")(random_id, ("10.1.2.3", 6881))
    assert nodeid.acceptor("public")(random_id, ("127.0.0.1", 6881))
    assert not nodeid.acceptor("public")(random_id, ("124.31.75.21", 6881))
    assert not nodeid.acceptor("all")(random_id, ("10.1.2.3", 6881))
    with pytest.raises(ValueError):
        nodeid.acceptor("off")


def test_checking_node_never_adds_a_contact_whose_id_does_not_fit():
    node = DHTNode(Clock(), node_id=bytes(20), settings=DHTSettings(node_id_check="all"))
    node._heard_from(bytes(range(20)), ("10.0.0.5", 6881))
    good = nodeid.node_id_for("10.0.0.6", lambda n: bytes(range(n)))
    node._heard_from(good, ("10.0.0.6", 6881))
    assert [c.node_id for c in node.routing_table.contacts()] == [good]


def test_lookup_drops_referrals_whose_ids_do_not_fit():
    class Node:
        node_id = bytes(20)
    accept = nodeid.acceptor("all")
    lookup = Lookup(Node(), bytes(20), b"find_node", {}, 8, 3, accept=accept)
    good = nodeid.node_id_for("10.0.0.6", lambda n: bytes(range(n)))
    lookup._add(bytes(range(20)), ("10.0.0.5", 6881))
    lookup._add(good, ("10.0.0.6", 6881))
    assert [c.node_id for c in lookup._shortlist] == [good]
