"""A swarm of DHTNodes on one simulated network: build, join, kill, revive, churn.

The scenario tests and the benchmarks need thousands of nodes whose routing
tables look like those of a swarm that has been running for a while. Joining
2,000 nodes through real bootstraps costs about a minute of CPU, so
`seed_routing_tables` fills the tables directly from the global view instead:
for every prefix length, a node learns up to k random nodes of the subtree on
the other side of that bit, which is what a long-lived Kademlia table converges
to (paper 2.2). Nodes that join later (`join`, churn) use the real bootstrap.

A node that dies is stopped without a word (its socket closes, datagrams to it
are dropped), as a machine that loses power. Everything random comes from the
seed, so a seed replays a run.
"""

import bisect
import math
import random

from twisted.internet import defer

from kademlia import nodeid
from kademlia.node import DHTNode
from kademlia.settings import DHTSettings
from kademlia.routing import QUESTIONABLE_AFTER
from kademlia.sim import SimClock, SimNetwork
from kademlia.timers import Loop, cancel

ID_BITS = 160


class SimSwarm:
    """Nodes on `network` (a SimNetwork) driven by `clock` (a SimClock).

    `factory(clock, node_id, settings) -> DHTNode` makes each node, so tests can
    mix in hostile variants.
    """

    def __init__(self, seed=0, settings=None, latency=None, loss=0.0):
        self.clock = SimClock()
        self.network = SimNetwork(self.clock, seed=seed, latency=latency, loss=loss)
        self.rng = random.Random(seed ^ 0x5EED)  # apart from the network's own stream
        self.settings = settings or DHTSettings()
        self.nodes = []  # the live nodes
        self._dead = {}  # address -> the node id it had, for revive

    @classmethod
    def build(cls, count, seed=0, factory=None, **options):
        """A swarm of `count` nodes whose routing tables are already filled."""
        swarm = cls(seed=seed, **options)
        swarm.add(count, factory)
        swarm.seed_routing_tables()
        return swarm

    def _make(self, factory, node_id, address):
        factory = factory or DHTNode
        node = factory(self.clock, node_id=node_id, settings=self.settings)
        node.attach(self.network, address)
        self.nodes.append(node)
        return node

    def add(self, count, factory=None):
        """Start `count` new nodes (not yet bootstrapped); returns them. Their ids fit
        their addresses (BEP 42) when the settings check ids."""
        made = []
        for _ in range(count):
            address = self.network.next_address()
            if self.settings.node_id_check == "off":
                node_id = self.rng.randbytes(20)
            else:
                node_id = nodeid.node_id_for(address[0], self.rng.randbytes)
            made.append(self._make(factory, node_id, address))
        return made

    def seed_routing_tables(self, nodes=None, among=None):
        """Fill the tables of `nodes` (default: all live nodes) from the global view
        of the nodes `among` (default: all live nodes)."""
        live = sorted(among if among is not None else self.nodes, key=lambda n: n.node_id)
        keys = [int.from_bytes(n.node_id, "big") for n in live]
        k = self.settings.k
        for node in nodes if nodes is not None else live:
            own = int.from_bytes(node.node_id, "big")
            table = node.routing_table
            for i in self._nearest(keys, own, k):
                table.heard_from(live[i].node_id, live[i].address)
            for shift in range(ID_BITS - 1, -1, -1):
                # The subtree that shares our bits above `shift` and differs at it.
                prefix = (own >> shift) ^ 1
                first = bisect.bisect_left(keys, prefix << shift)
                last = bisect.bisect_left(keys, (prefix + 1) << shift)
                picked = range(first, last)
                if len(picked) > k:
                    picked = self.rng.sample(picked, k)
                for i in picked:
                    table.heard_from(live[i].node_id, live[i].address)
                mine = (own >> shift) << shift
                if bisect.bisect_left(keys, mine + (1 << shift)) - bisect.bisect_left(keys, mine) <= 1:
                    break  # nobody else shares this long a prefix with us

    @staticmethod
    def _nearest(keys, own, k):
        """Indexes of the k keys nearest `own` by XOR (own excluded), from the
        smallest id subtree around `own` that holds more than k keys."""
        for shift in range(ID_BITS + 1):
            low = (own >> shift) << shift
            first = bisect.bisect_left(keys, low)
            last = bisect.bisect_left(keys, low + (1 << shift))
            if last - first > k or last - first == len(keys):
                break
        ranked = sorted((keys[i] ^ own, i) for i in range(first, last) if keys[i] != own)
        return [i for _, i in ranked[:k]]

    def join(self, count, factory=None, via=3):
        """Start `count` nodes that bootstrap through `via` random live nodes each.

        Returns (new nodes, Deferred that fires when all have bootstrapped)."""
        entry = list(self.nodes)
        joined = self.add(count, factory)
        return joined, defer.gatherResults(
            [node.bootstrap(self.entry_points(via, entry)) for node in joined],
            consumeErrors=True,
        )

    def entry_points(self, count, among=None):
        among = among if among is not None else self.nodes
        return [n.address for n in self.rng.sample(among, min(count, len(among)))]

    def kill(self, node):
        """The node's machine dies silently: no goodbye, its address goes quiet."""
        self.nodes.remove(node)
        self._dead[node.address] = node.node_id
        node.stop().addErrback(lambda _: None)

    def kill_fraction(self, fraction, spare=()):
        """Kill a random `fraction` of the live nodes, never those in `spare`."""
        spare = set(map(id, spare))
        victims = [n for n in self.nodes if id(n) not in spare]
        victims = self.rng.sample(victims, round(fraction * len(self.nodes)))
        for node in victims:
            self.kill(node)
        return victims

    def revive(self, address, factory=None, via=3):
        """Restart a dead node at its old address with its old id and an empty store
        (a process restart keeps nothing in memory); it bootstraps through `via`
        live nodes. Returns (node, Deferred of its bootstrap)."""
        node_id = self._dead.pop(address)
        entry = self.entry_points(via)
        node = self._make(factory, node_id, address)
        return node, node.bootstrap(entry)

    def run_all(self, deferreds, limit=120.0, step=1.0):
        """Advance the clock until every Deferred has fired or `limit` seconds passed.

        Returns the results, None for a Deferred that failed or never fired."""
        results = [None] * len(deferreds)
        pending = [len(deferreds)]

        def settle(result, index):
            results[index] = result
            pending[0] -= 1

        def failed(failure, index):
            pending[0] -= 1

        for index, d in enumerate(deferreds):
            d.addCallbacks(settle, failed, (index,), None, (index,))
        waited = 0.0
        while pending[0] and waited < limit:
            self.clock.advance(step)
            waited += step
        return results

    def advance(self, seconds, step=10.0):
        """Let `seconds` of virtual time pass (in steps, so periodic work interleaves)."""
        while seconds > 0:
            self.clock.advance(min(step, seconds))
            seconds -= step

    def holders(self, target):
        """The live nodes that store an item under `target` right now."""
        return [n for n in self.nodes if n.store.get(target) is not None]

    def stop(self):
        for node in list(self.nodes):
            node.stop().addErrback(lambda _: None)
        self.nodes = []


class Churn:
    """Nodes leave after a session drawn from `session()` and come back after a
    downtime drawn from `downtime()` (both in seconds), with their old id and
    address and an empty store, as users closing and reopening the client.

    Nodes already up when churn starts are mid-session: their remaining time is
    drawn from the residual-life distribution (a random online node is more
    likely to be in a long session), so the population starts in equilibrium.
    """

    def __init__(self, swarm, session, downtime, spare=(), via=3):
        self.swarm = swarm
        self.session = session
        self.downtime = downtime
        self.spare = set(map(id, spare))
        self.via = via
        self.departures = 0
        self.arrivals = 0
        self._timers = []

    def start(self):
        rng = self.swarm.rng
        pool = [self.session() for _ in range(20_000)]
        for node in self.swarm.nodes:
            if id(node) not in self.spare:
                remaining = rng.choices(pool, weights=pool)[0] * rng.random()
                self._schedule(remaining, self._leave, node)

    def stop(self):
        for timer in self._timers:
            cancel(timer)
        self._timers = []

    def _schedule(self, delay, fn, *args):
        self._timers = [t for t in self._timers if t.active()]
        self._timers.append(self.swarm.clock.callLater(delay, fn, *args))

    def _leave(self, node):
        if node not in self.swarm.nodes:
            return
        self.departures += 1
        self.swarm.kill(node)
        self._schedule(self.downtime(), self._return, node.address)

    def _return(self, address):
        self.arrivals += 1
        node, _ = self.swarm.revive(address, via=self.via)
        self._schedule(self.session(), self._leave, node)


class RoutingUpkeep:
    """Table upkeep by the simulator, for runs too long for the nodes' own.

    BEP 5 upkeep (DHTNode's maintenance: pings of quiet contacts, refreshes of
    stale buckets) costs a 2,000-node swarm some 500 datagrams a second, most of
    a multi-day run's CPU. With it off in the nodes (a huge
    `DHTSettings.maintenance_interval`), this stands in for it at its own
    15-minute cadence: every live node forgets the contacts that died and fills
    the buckets they leave with random live nodes of the bucket's range, among
    the nodes for which `serves(node)` holds (not read-only clients). Newcomers
    get into tables as in the nodes (their bootstrap queries); lookups, items,
    hand-over and republication run the nodes' own code. Unlike real upkeep it
    verifies nobody, so no hand-over comes of it."""

    def __init__(self, swarm, serves=lambda node: True, interval=QUESTIONABLE_AFTER):
        self.swarm = swarm
        self.serves = serves
        self.forgotten = 0
        self._loop = Loop(swarm.clock, interval, self.run)

    def start(self):
        self._loop.start()

    def stop(self):
        return self._loop.stop()

    def run(self):
        servers = sorted((n for n in self.swarm.nodes if self.serves(n)), key=lambda n: n.node_id)
        keys = [int.from_bytes(n.node_id, "big") for n in servers]
        live = {n.node_id for n in servers}
        for node in self.swarm.nodes:
            table = node.routing_table
            dead = [c for c in table.contacts() if c.node_id not in live]
            for contact in dead:
                table.remove(contact.node_id)
            self.forgotten += len(dead)
            for bucket in {b for c in dead for b in table.buckets if b.covers(c.key)}:
                self._fill(table, bucket, servers, keys)

    def _fill(self, table, bucket, servers, keys):
        first, last = bisect.bisect_left(keys, bucket.low), bisect.bisect_left(keys, bucket.high)
        fresh = [n for n in servers[first:last] if n.node_id not in bucket.contacts and n.node_id != table.own_id]
        for node in self.swarm.rng.sample(fresh, min(bucket.k - len(bucket.contacts), len(fresh))):
            table.heard_from(node.node_id, node.address)


def weibull(rng, shape, scale):
    """A sampler of Weibull(shape, scale) durations: heavy-tailed when shape < 1."""
    return lambda: rng.weibullvariate(scale, shape)


def weibull_median(shape, scale):
    return scale * math.log(2) ** (1 / shape)
