"""Dead drops on plain BEP 44 nodes: libtorrent sessions (its Python bindings) are the
only other DHT nodes on loopback. They know nothing of our `ttl` key; a writes two
messages for b and leaves, b reads and acknowledges them, a comes back and sees the
receipts. (The sessions are tests/test_dht_libtorrent.py's.)

b reads from an hour before: a reader with no cursor asks for 50 slots, and
libtorrent blocks an IP past 5 queries a second (`dht_block_ratelimit`), which
on a six-node loopback swarm a full scan exceeds even paced."""

import os
import shutil
import tempfile

from nacl.signing import SigningKey
from twisted.internet import defer, reactor, task
from twisted.trial import unittest

from kadchat.deaddrop import Pair, slot_of
from kadchat.dropstore import DropStore
from kadchat.history import History
from kadchat.mailbox import DropReader, DropWriter, DHTCalls
from kadchat.model import MessageState
from kademlia.node import DHTNode

from tests.test_dht_libtorrent import lt, lt_session

SESSIONS = 6


class DropsOnLibtorrentTests(unittest.TestCase):
    timeout = 90

    def setUp(self):
        if lt is None:
            raise unittest.SkipTest("libtorrent's Python bindings are not installed")
        self.sessions = [lt_session() for _ in range(SESSIONS)]
        self.addresses = [("127.0.0.1", s.listen_port()) for s in self.sessions]
        for s in self.sessions:
            for address in self.addresses:
                s.add_dht_node(address)
        self.a_key, self.b_key = SigningKey(b"a" * 32), SigningKey(b"b" * 32)
        self.a, self.b = bytes(self.a_key.verify_key), bytes(self.b_key.verify_key)
        self.nodes = []

    @defer.inlineCallbacks
    def tearDown(self):
        for node in self.nodes:
            if node.address is not None:
                yield node.stop()
        del self.sessions

    @defer.inlineCallbacks
    def client(self, n):
        """One of our clients: a DHT node whose only peers are the libtorrent sessions."""
        node = DHTNode(reactor)
        node.listen(0, f"127.0.31.{n}")
        self.nodes.append(node)
        for _ in range(50):  # libtorrent answers once its own table has settled
            size = yield node.bootstrap(self.addresses)
            if size >= SESSIONS:
                break
            yield task.deferLater(reactor, 0.2, lambda: None)
        return node

    @defer.inlineCallbacks
    def test_drops_are_stored_read_and_acknowledged_through_libtorrent_nodes_alone(self):
        tmp = tempfile.mkdtemp(prefix="kadchat-drops-lt-")
        self.addCleanup(shutil.rmtree, tmp, True)
        history = History(os.path.join(tmp, "a.sqlite3"))
        ids = [os.urandom(16) for _ in range(2)]
        for n, message_id in enumerate(ids):
            history.add_outgoing(self.b, message_id, f"offline {n}", reactor.seconds())
        states = []

        def set_state(peer, message_id, state):
            if history.set_state(peer, message_id, state):
                states.append((message_id, state))
        a_pair, b_pair = Pair(self.a_key, self.b), Pair(self.b_key, self.a)
        a_store = DropStore(os.path.join(tmp, "a.db"))

        def writer(node):
            return DropWriter(reactor, DHTCalls(reactor, node), lambda peer: a_pair, a_store, history,
                              lambda peer: False, set_state)
        a_node = yield self.client(1)
        yield writer(a_node).write(self.b)
        self.assertEqual([history.get(i).state for i in ids], [MessageState.STORED] * 2)
        yield a_node.stop()  # a leaves: only libtorrent holds the drops
        self.nodes.remove(a_node)
        a_node.address = None

        got = []
        b_node = yield self.client(2)

        b_store = DropStore(os.path.join(tmp, "b.db"))
        b_store.set_read_slot(self.a, slot_of(reactor.seconds()) - 1)  # b was online an hour ago
        reader = DropReader(reactor, DHTCalls(reactor, b_node), lambda peer: b_pair, b_store,
                            lambda peer, m, base: got.append(m))
        yield reader.read(self.a)
        self.assertEqual([(m.id, m.text) for m in got], [(ids[0], "offline 0"), (ids[1], "offline 1")])
        self.assertEqual([n.address[0] for n in self.nodes if n.address], ["127.0.31.2"])

        a_again = yield self.client(3)
        yield writer(a_again).write(self.b)
        self.assertEqual([history.get(i).state for i in ids], [MessageState.DELIVERED] * 2)
        self.assertEqual(a_store.drops(), [])
