"""BEP 44 interop with libtorrent (its Python bindings): a libtorrent session,
bootstrapped to our nodes on loopback, puts a mutable item through them and gets
it back, and gets one our nodes put. Its values come back to it although it
never proved its address (reflection.py's byte budget, not the 3x bound).
libtorrent listens on 127.0.0.1 only, with LSD, UPnP and NAT-PMP off."""

import hashlib

from nacl.signing import SigningKey
from twisted.internet import defer, reactor, task
from twisted.trial import unittest

from kademlia.items import MutableItem
from kademlia.node import DHTNode

try:
    import libtorrent as lt
except ImportError:  # pragma: no cover - the bindings are in requirements-dev
    lt = None

VALUE = b"from libtorrent " * 60  # ~960 bytes: an answer far over 3x its query


def lt_session():
    return lt.session({
        "listen_interfaces": "127.0.0.1:0", "outgoing_interfaces": "127.0.0.1",
        "enable_dht": True, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
        "dht_bootstrap_nodes": "",
        # libtorrent keeps loopback and same-/24 nodes out of its routing table and
        # searches by default; our test nodes are all on 127.0.x.y.
        "dht_restrict_routing_ips": False, "dht_restrict_search_ips": False,
        "dht_prefer_verified_node_ids": False, "dht_ignore_dark_internet": False,
        "alert_mask": lt.alert.category_t.dht_notification | lt.alert.category_t.stats_notification,
    })


def libtorrent_secret(seed):
    """libtorrent's 64-byte ed25519 secret key for a 32-byte seed (SHA-512, clamped)."""
    expanded = bytearray(hashlib.sha512(seed).digest())
    expanded[0] &= 248
    expanded[31] = (expanded[31] & 63) | 64
    return bytes(expanded)


class LibtorrentInteropTests(unittest.TestCase):
    timeout = 60

    def setUp(self):
        if lt is None:
            raise unittest.SkipTest("libtorrent's Python bindings are not installed")
        self.nodes = []
        for n in range(4):
            node = DHTNode(reactor)
            node.listen(0, f"127.0.21.{n + 1}")
            self.nodes.append(node)
        self.session = lt_session()
        self.seed = hashlib.sha256(b"libtorrent interop").digest()
        self.public_key = bytes(SigningKey(self.seed).verify_key)

    @defer.inlineCallbacks
    def tearDown(self):
        for node in self.nodes:
            yield node.stop()
        del self.session

    @defer.inlineCallbacks
    def join(self):
        for node in self.nodes[1:]:
            yield node.bootstrap([self.nodes[0].address])
        for node in self.nodes:
            self.session.add_dht_node(node.address)
        yield self.libtorrent_knows(len(self.nodes))

    @defer.inlineCallbacks
    def libtorrent_knows(self, count, limit=20.0):
        """Wait until libtorrent's routing table holds `count` nodes: a put or get
        started earlier would find nobody to ask."""
        for _ in range(int(limit / 0.2)):
            self.session.post_dht_stats()
            stats = yield self.alert(lt.dht_stats_alert)
            if sum(bucket["num_nodes"] for bucket in stats.routing_table) >= count:
                return
            yield task.deferLater(reactor, 0.2, lambda: None)
        self.fail(f"libtorrent's routing table never reached {count} nodes")

    @defer.inlineCallbacks
    def alert(self, kind, limit=20.0):
        """The first libtorrent alert of `kind` (polled: libtorrent has its own thread)."""
        for _ in range(int(limit / 0.1)):
            for alert in self.session.pop_alerts():
                if isinstance(alert, kind):
                    return alert
            yield task.deferLater(reactor, 0.1, lambda: None)
        self.fail(f"no {kind.__name__} within {limit} s")

    @defer.inlineCallbacks
    def test_libtorrent_puts_through_our_nodes_and_gets_the_item_back(self):
        yield self.join()
        self.session.dht_put_mutable_item(libtorrent_secret(self.seed), self.public_key, VALUE, b"salt")
        put = yield self.alert(lt.dht_put_alert)
        self.assertGreaterEqual(put.num_success, 1)
        target = hashlib.sha1(self.public_key + b"salt").digest()
        held = [n for n in self.nodes if n.store.get(target) is not None]
        self.assertTrue(held, "none of our nodes stored libtorrent's put")
        ours = yield self.nodes[-1].get(target, b"salt")
        self.assertEqual((ours.v, ours.seq), (VALUE, put.seq))
        self.session.dht_get_mutable_item(self.public_key, b"salt")
        got = yield self.alert(lt.dht_mutable_item_alert)
        self.assertEqual((got.item, got.seq), (VALUE, put.seq))

    @defer.inlineCallbacks
    def test_libtorrent_gets_an_item_our_nodes_put(self):
        yield self.join()
        key = SigningKey(self.seed)
        item = MutableItem.create(self.public_key, lambda m: key.sign(m).signature, VALUE, 7, b"ours")
        accepted = yield self.nodes[1].put(item)
        self.assertGreaterEqual(accepted, 3)
        self.session.dht_get_mutable_item(self.public_key, b"ours")
        got = yield self.alert(lt.dht_mutable_item_alert)
        self.assertEqual((got.item, got.seq), (VALUE, 7))
