"""kademlia.lookup: iterative lookups on a scripted network and a Clock."""

import random

from twisted.internet import defer
from twisted.internet.task import Clock

from kademlia import krpc
from kademlia.lookup import Lookup
from kademlia.protocol import NodeStopped, QueryTimeout
from kademlia.routing import distance

K, ALPHA = 8, 3
STALL, HARD_TIMEOUT, DELAY = 0.1, 2.0, 0.01


class Peer:
    def __init__(self, node_id, address, alive=True, delay=DELAY):
        self.node_id, self.address, self.alive, self.delay = node_id, address, alive, delay
        self.compact = krpc.encode_node(node_id, address)
        self.known = []  # Peers it refers to


class ScriptedNode:
    """What Lookup needs of a DHTNode, over scripted peers: live ones answer find_node with
    the K peers they know nearest the target after `delay`; dead ones time out."""

    def __init__(self, peers):
        self.node_id = bytes(20)
        self.clock = Clock()
        self.by_address = {p.address: p for p in peers}
        self.in_flight = 0
        self.most_in_flight = 0
        self.queried = []
        self.pending = {}  # Deferred -> its DelayedCall
        self.stopped = False

    def stall_timeout(self, node_id):
        return STALL

    def query_contact(self, node_id, address, method, args):
        if self.stopped:
            return defer.fail(NodeStopped())
        self.queried.append(address)
        peer = self.by_address.get(address)
        d = defer.Deferred()
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)

        def settle():
            del self.pending[d]
            self.in_flight -= 1
            if peer is None or not peer.alive:
                d.errback(QueryTimeout("no answer"))
                return
            nearest = sorted(peer.known, key=lambda p: distance(p.node_id, args[b"target"]))[:K]
            d.callback(krpc.Response(b"tt", {b"nodes": krpc.encode_nodes(nearest)}, peer.node_id, None))

        self.pending[d] = self.clock.callLater(peer.delay if peer is not None and peer.alive else HARD_TIMEOUT, settle)
        return d

    def stop(self):
        """As KRPCProtocol.stop(): outstanding queries fail with NodeStopped."""
        self.stopped = True
        for d, call in list(self.pending.items()):
            del self.pending[d]
            call.cancel()
            d.errback(NodeStopped())


def make_peers(count, seed, dead=0.0, knows=12):
    rng = random.Random(seed)
    peers = [Peer(rng.randbytes(20), (f"127.0.{n // 250}.{n % 250 + 1}", 6881)) for n in range(count)]
    for peer in peers:
        # Each knows a few random peers and its own neighbourhood, as a Kademlia table does.
        near = sorted(peers, key=lambda p: distance(p.node_id, peer.node_id))[1 : K + 1]
        peer.known = list({id(p): p for p in near + rng.sample(peers, knows)}.values())
    for peer in rng.sample(peers, int(count * dead)):
        peer.alive = False
    return peers, rng


def run_lookup(node, target, seeds, until=30.0):
    lookup = Lookup(node, target, b"find_node", {b"target": target}, K, ALPHA)
    d = lookup.start(seeds)
    result = []
    d.addCallback(result.append)
    while not result and node.clock.seconds() < until:
        node.clock.advance(0.005)
    assert result, "the lookup never finished"
    return result[0], lookup


def nearest_live(peers, target):
    return sorted((p for p in peers if p.alive), key=lambda p: distance(p.node_id, target))[:K]


def test_a_lookup_finds_the_k_nearest_nodes_nearest_first():
    peers, rng = make_peers(300, seed=1)
    for _ in range(10):
        target = rng.randbytes(20)
        node = ScriptedNode(peers)
        answered, lookup = run_lookup(node, target, rng.sample(peers, 3))
        assert [c.node_id for c in answered] == [p.node_id for p in nearest_live(peers, target)]
        assert lookup.queries_sent < 40


def test_no_more_than_alpha_queries_are_outstanding_while_nobody_stalls():
    peers, rng = make_peers(200, seed=2)
    node = ScriptedNode(peers)
    run_lookup(node, rng.randbytes(20), rng.sample(peers, 8))
    assert node.most_in_flight == ALPHA


def test_dead_nodes_cost_a_stall_timeout_not_the_hard_timeout():
    peers, rng = make_peers(300, seed=3, dead=0.3)
    for _ in range(10):
        target = rng.randbytes(20)
        node = ScriptedNode(peers)
        answered, _ = run_lookup(node, target, rng.sample(peers, 3))
        assert [c.node_id for c in answered] == [p.node_id for p in nearest_live(peers, target)]
        assert node.clock.seconds() < HARD_TIMEOUT, "a lookup waited out a dead node's hard timeout"


def test_a_stalled_node_no_longer_holds_the_lookup():
    peers, rng = make_peers(100, seed=4)
    target = rng.randbytes(20)
    nearest = nearest_live(peers, target)[0]
    nearest.delay = 10 * STALL  # alive but slow: stalls long before it answers
    node = ScriptedNode(peers)
    answered, _ = run_lookup(node, target, rng.sample(peers, 3))
    assert node.clock.seconds() < nearest.delay
    assert nearest.node_id not in [c.node_id for c in answered]
    assert len(answered) == K


def test_a_node_known_at_a_stale_address_is_reached_where_others_refer_it():
    peers, rng = make_peers(100, seed=5)
    target = rng.randbytes(20)
    moved = nearest_live(peers, target)[0]
    stale = Peer(moved.node_id, ("127.0.9.9", 1111), alive=False)  # our table's old address
    node = ScriptedNode(peers + [stale])
    answered, _ = run_lookup(node, target, [stale] + rng.sample(peers, 3))
    assert (answered[0].node_id, answered[0].address) == (moved.node_id, moved.address)


def test_a_lookup_ends_at_once_when_our_node_stops():
    peers, rng = make_peers(100, seed=6)
    node = ScriptedNode(peers)
    lookup = Lookup(node, rng.randbytes(20), b"find_node", {b"target": bytes(20)}, K, ALPHA)
    d = lookup.start(rng.sample(peers, 3))
    node.clock.advance(DELAY)  # first answers in, next queries out
    assert node.pending
    asked = len(node.queried)
    node.stop()
    assert d.called
    assert len(node.queried) == asked
    assert node.clock.getDelayedCalls() == []


def test_a_lookup_with_no_seeds_ends_empty():
    node = ScriptedNode([])
    answered, lookup = run_lookup(node, bytes(20), [])
    assert answered == [] and lookup.queries_sent == 0
