"""announce_peer / get_peers values on our own nodes (kademlia/peers.py): a token
for the announcer's IP is required, implied_port takes the source port, peers
expire and every table is capped; on real sockets, kadchat nodes alone carry
an introducer's announce to a searching client (kadchat.introducer_discovery)."""

import pytest
from twisted.internet import defer, reactor
from twisted.internet.task import Clock
from twisted.trial import unittest

from kadchat.introducer_discovery import INFO_HASH, Announcer, announced_peers
from kademlia import krpc
from kademlia.node import DHTNode
from kademlia.peers import PeerHandlers, PeerStore
from kademlia.tokens import TokenManager

HASH = b"h" * 20
SOURCE = ("198.51.100.7", 40000)


def _handlers(clock, **limits):
    tokens = TokenManager(clock.seconds)
    store = PeerStore(clock.seconds, **limits)
    return store, tokens, PeerHandlers(store, tokens, lambda args, address: {b"nodes": b""})


def test_an_announce_needs_the_announcers_token_and_implied_port_takes_the_source_port():
    clock = Clock()
    store, tokens, handlers = _handlers(clock)
    with pytest.raises(krpc.KRPCError):
        handlers.announce_peer({b"info_hash": HASH, b"port": 6881, b"token": b"guessed!"}, SOURCE)
    with pytest.raises(krpc.KRPCError):  # a token for another IP
        handlers.announce_peer({b"info_hash": HASH, b"port": 6881, b"token": tokens.issue("203.0.113.1")}, SOURCE)
    with pytest.raises(krpc.KRPCError):
        handlers.announce_peer({b"info_hash": HASH, b"port": 0, b"token": tokens.issue(SOURCE[0])}, SOURCE)
    handlers.announce_peer({b"info_hash": HASH, b"port": 6881, b"implied_port": 1,
                            b"token": tokens.issue(SOURCE[0])}, SOURCE)
    assert store.peers(HASH) == [SOURCE]
    answer = handlers.get_peers({b"info_hash": HASH}, ("203.0.113.1", 1))
    assert answer[b"values"] == [krpc.encode_address(SOURCE)] and b"nodes" in answer
    assert b"values" not in handlers.get_peers({b"info_hash": b"x" * 20}, ("203.0.113.1", 1))


def test_peers_expire_and_the_tables_are_capped():
    clock = Clock()
    store = PeerStore(clock.seconds, lifetime=1800, max_hashes=2, max_per_hash=3)
    for n in range(5):
        store.announce(HASH, (f"198.51.100.{n}", 1))
    assert store.peers(HASH) == [("198.51.100.4", 1), ("198.51.100.3", 1), ("198.51.100.2", 1)]
    store.announce(b"a" * 20, SOURCE)
    store.announce(b"b" * 20, SOURCE)  # a third info-hash: the least recently announced goes
    assert store.peers(HASH) == [] and len(store) == 2
    clock.advance(1801)
    assert store.peers(b"a" * 20) == []


class OwnNodesCarryAnnouncesTests(unittest.TestCase):
    timeout = 30

    @defer.inlineCallbacks
    def test_a_search_finds_the_introducer_announced_on_kadchat_nodes(self):
        nodes = []
        for n in range(6):
            node = DHTNode(reactor)
            node.listen(0, f"127.0.44.{n + 1}")
            self.addCleanup(node.stop)
            nodes.append(node)
        for node in nodes:
            yield node.bootstrap([nodes[0].address])
        announcer = Announcer(reactor, nodes[1])
        stored = yield announcer.announce()
        self.assertGreaterEqual(stored, 4)
        answered = yield nodes[5].get_peers(INFO_HASH)
        self.assertEqual(announced_peers(answered), [nodes[1].address])
