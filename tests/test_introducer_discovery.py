"""Introducers found in the DHT itself (issue 14): on a loopback stand-in for
Mainline (16 libtorrent sessions, tests/mainline_standin.py) carol, a client
opted in with `introducer`, announces herself under the well-known info-hash;
alice, an ordinary client, finds her with get_peers and keeps a registration
with her, which her presence record then lists. ChatServices in this process,
on real sockets; libtorrent stores the announce. Plus the parsing of get_peers
answers."""

import os

import pytest
from twisted.internet import defer, reactor, task
from twisted.trial import unittest

from config import Config
from kadchat import network_mode
from kadchat.identity import load_or_create
from kadchat.introducer_discovery import INFO_HASH, IntroducerSearch, announced_peers
from kadchat.service import ChatService
from kademlia import krpc
from tests.mainline_standin import MainlineStandIn
from tests.test_dht_libtorrent import lt


class Answer:
    def __init__(self, values):
        self.values = values


def test_announced_peers_are_the_routable_compact_values_nearest_answer_first():
    a, b = krpc.encode_address(("198.51.100.7", 6881)), krpc.encode_address(("203.0.113.9", 7000))
    answers = [Answer({b"values": [a, b"short", krpc.encode_address(("0.0.0.0", 1))]}),
               Answer({b"values": b"not a list"}), Answer({b"nodes": b""}), Answer(None),
               Answer({b"values": [b, a]})]
    assert announced_peers(answers) == [("198.51.100.7", 6881), ("203.0.113.9", 7000)]


def test_the_info_hash_is_sha1_of_a_fixed_string():
    import hashlib
    assert INFO_HASH == hashlib.sha1(b"kadchat introducers v1").digest() and len(INFO_HASH) == 20


class FakeTraversal:
    def __init__(self):
        self.introducers, self.observed, self.starts = [], {}, []

    def start(self, introducers):
        self.introducers = list(introducers)
        self.starts.append(self.introducers)


class FakeNode:
    def __init__(self, *announced):
        self.announced = list(announced)

    def get_peers(self, info_hash):
        assert info_hash == INFO_HASH
        return defer.succeed([Answer({b"values": [krpc.encode_address(a) for a in self.announced]})])


def test_a_search_keeps_introducers_that_answer_and_replaces_those_that_never_do():
    from twisted.internet.task import Clock
    import random
    clock, traversal = Clock(), FakeTraversal()
    me, good, silent, other, spare = (("198.51.100.9", 1), ("198.51.100.1", 1), ("198.51.100.2", 1),
                                      ("198.51.100.3", 1), ("198.51.100.4", 1))
    node = FakeNode(me, good, silent)
    search = IntroducerSearch(clock, node, traversal, own_address=lambda: me, wanted=2, rng=random.Random(1))
    search.start()
    assert sorted(traversal.introducers) == [good, silent]  # never ourselves
    traversal.observed[good] = ("203.0.113.5", 4000)  # only one of them answered our registration
    node.announced = [silent, other, spare, good]
    clock.advance(60)
    assert traversal.introducers[0] == good and traversal.introducers[1] in (other, spare)
    traversal.observed[traversal.introducers[1]] = ("203.0.113.5", 4000)
    clock.advance(60)  # both answer: settled, the next search is 15 minutes away
    starts = len(traversal.starts)
    clock.advance(600)
    assert len(traversal.starts) == starts
    search.stop()


def test_while_none_is_announced_the_search_comes_back_every_ten_seconds_then_a_minute():
    from twisted.internet.task import Clock
    clock, traversal = Clock(), FakeTraversal()
    node = FakeNode()
    searches = []
    get_peers = node.get_peers
    node.get_peers = lambda info_hash: searches.append(clock.seconds()) or get_peers(info_hash)
    search = IntroducerSearch(clock, node, traversal, wanted=2)
    search.start()
    clock.advance(10)
    clock.advance(10)
    assert searches == [0, 10, 20] and traversal.introducers == []  # nobody to register with yet
    node.announced = [("198.51.100.1", 1)]
    clock.advance(10)
    assert traversal.introducers == [("198.51.100.1", 1)]
    clock.advance(59)
    assert searches == [0, 10, 20, 30]  # one found, not yet answering: back to once a minute
    clock.advance(1)
    assert searches[-1] == 90
    search.stop()
    assert not clock.getDelayedCalls()


class DiscoveryOnLibtorrentTests(unittest.TestCase):
    timeout = 120

    def setUp(self):
        if lt is None:
            raise unittest.SkipTest("libtorrent's Python bindings are not installed")
        self.standin = MainlineStandIn(16)
        self.addCleanup(self.standin.stop)
        previous = os.environ.get(network_mode.ROUTERS_ENV)
        os.environ[network_mode.ROUTERS_ENV] = self.standin.routers()
        self.addCleanup(os.environ.__setitem__, network_mode.ROUTERS_ENV, previous or "")
        self.services = []

    @defer.inlineCallbacks
    def tearDown(self):
        for service in self.services:
            yield service.stop()

    def client(self, name, host, **settings):
        data_dir = self.mktemp()
        os.makedirs(data_dir)
        service = ChatService(reactor, Config(data_dir=data_dir, interface=host, **settings),
                              load_or_create(data_dir, name))
        service.start()
        self.services.append(service)
        return service

    @defer.inlineCallbacks
    def until(self, condition, within=60.0):
        deadline = reactor.seconds() + within
        while not condition():
            self.assertLess(reactor.seconds(), deadline, "condition not met in time")
            yield task.deferLater(reactor, 0.2, lambda: None)

    @pytest.mark.slow
    @defer.inlineCallbacks
    def test_a_client_finds_an_announced_introducer_with_get_peers_and_registers_with_it(self):
        carol = self.client("carol", "127.0.43.3", introducer=True)
        self.assertEqual(carol.config.network, "mainline")
        yield self.until(lambda: carol._announcer.stored >= 8)  # once the votes show her reachable
        self.assertTrue(carol.publicly_reachable())

        alice = self.client("alice", "127.0.43.1")
        self.assertIsNone(alice._announcer)  # not opted in
        yield self.until(lambda: alice.reachability.traversal.introducers == [carol.address])
        yield self.until(lambda: carol.introducer.registered >= 1 and
                         carol.address in alice.reachability.traversal.observed)
        self.assertIn(carol.address, alice.reachability.own_presence().introducers)
        self.assertFalse(alice.node.protocol.read_only)  # reachable on loopback: not BEP 43 read-only
