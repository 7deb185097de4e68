"""Mainline mode against a loopback stand-in for Mainline (tests/mainline_standin.py):
16 libtorrent sessions and no kadchat server at all. Two console clients started
without any bootstrap node (so in Mainline mode, joining through "routers" that
KADCHAT_MAINLINE_ROUTERS points at four of the sessions) find each other (each
already has the other's card, and there are no introducers: each finds the
other's presence secret in their dead drop, a SECRET drop), chat,
and leave each other offline messages in dead drops that only libtorrent holds;
meanwhile no libtorrent node receives more than 5 packets in any second from
either client (libtorrent blocks an IP for 5 minutes past that). And BEP 43's
read-only flag, as libtorrent honours it."""

import pytest
from twisted.internet import defer, reactor, task
from twisted.trial import unittest

from kadchat.network_mode import ROUTERS_ENV
from kademlia.node import DHTNode
from tests.client_helpers import chat_both_ways, friends, procs, received  # noqa: F401 (fixture)
from tests.mainline_standin import MainlineStandIn
from tests.test_dht_libtorrent import lt

pytestmark = pytest.mark.skipif(lt is None, reason="libtorrent's Python bindings are not installed")

ALICE, BOB = "127.0.43.1", "127.0.43.2"
PER_SECOND_LIMIT = 5  # libtorrent's dht_block_ratelimit


def stored(name):
    return rf"^\(stored for {name}\)$"


@pytest.fixture
def mainline():
    standin = MainlineStandIn(16)
    yield standin
    standin.stop()


@pytest.mark.slow
def test_two_clients_chat_and_leave_offline_messages_over_libtorrent_nodes_alone(tmp_path, procs, mainline):
    people = friends(tmp_path, ["alice", "bob"])
    env = {ROUTERS_ENV: mainline.routers()}
    alice = procs.client(people["alice"][0], interface=ALICE, env=env)
    bob = procs.client(people["bob"][0], interface=BOB, env=env)
    chat_both_ways(alice, bob, timeout=60)
    assert alice.quit() == 0 and bob.quit() == 0

    # Offline messages: each writes to the other while the other is away.
    alice = procs.client(people["alice"][0], interface=ALICE, env=env)
    alice.send_line("/msg bob left for you while you were away")
    alice.expect(stored("bob"), timeout=60)
    assert alice.quit() == 0
    bob = procs.client(people["bob"][0], interface=BOB, env=env)
    bob.expect(received("alice", "left for you while you were away"), timeout=90)
    bob.send_line("/msg alice and one for you")
    bob.expect(stored("alice"), timeout=60)
    assert bob.quit() == 0
    alice = procs.client(people["alice"][0], interface=ALICE, env=env)
    alice.expect(received("bob", "and one for you"), timeout=90)
    assert alice.quit() == 0

    log = (people["alice"][0] / "client.log").read_text()
    assert "joined the swarm" in log and "kadchat DHT node" not in log
    # The measurement saw the clients' traffic, and none of it too fast for libtorrent.
    assert min(mainline.total_from(ALICE), mainline.total_from(BOB)) > 100
    packets, session, source = mainline.busiest_second()
    assert packets <= PER_SECOND_LIMIT, f"session {session} got {packets} packets in one second from {source}"


class ReadOnlyTests(unittest.TestCase):
    """BEP 43 as libtorrent reads it: a node whose queries carry `ro` is answered
    but not taken into libtorrent's routing tables; one without it is."""

    timeout = 60

    def setUp(self):
        if lt is None:
            raise unittest.SkipTest("libtorrent's Python bindings are not installed")
        self.standin = MainlineStandIn(4)
        self.addCleanup(self.standin.stop)

    @defer.inlineCallbacks
    def table_sizes(self):
        self.standin.post_table_sizes()
        while len(self.standin.table_sizes) < len(self.standin.sessions):
            yield task.deferLater(reactor, 0.1, lambda: None)
        return [size for _, size in sorted(self.standin.table_sizes.items())]

    @defer.inlineCallbacks
    def ask_everyone(self, host, read_only):
        node = DHTNode(reactor)
        node.listen(0, host)
        self.addCleanup(node.stop)
        node.protocol.read_only = read_only
        for _ in range(3):
            yield node.bootstrap(self.standin.addresses)
            yield task.deferLater(reactor, 0.5, lambda: None)
        return node

    @defer.inlineCallbacks
    def test_libtorrent_keeps_a_read_only_node_out_of_its_tables(self):
        yield task.deferLater(reactor, 2.0, lambda: None)  # the sessions find each other
        before = yield self.table_sizes()
        self.assertEqual(before, [3] * 4)
        read_only = yield self.ask_everyone("127.0.43.5", True)
        self.assertEqual(len(read_only.routing_table), 4)  # answered all the same
        self.assertEqual((yield self.table_sizes()), before)
        yield self.ask_everyone("127.0.43.6", False)
        self.assertEqual((yield self.table_sizes()), [4] * 4)
