"""Recipes for the scenario tests and benchmarks: swarm set-up, record owners,
churn, partitions, faults and poisoning, and the lookup measurements they
report (hostile node classes are in tests/hostile_nodes.py).

A scenario is a SimSwarm (kademlia.simswarm) of a few thousand nodes, a few
hundred owners each refreshing one signed BEP 44 record (as presence records
are refreshed), and honest readers looking the records up while faults are
injected. Every figure a scenario measures is returned as a `Tally`, whose
`describe()` goes into the assertion message.
"""

import contextlib
import gc
import hashlib
import statistics
import zlib
from collections import Counter
from dataclasses import dataclass, field

from nacl.signing import SigningKey

from kademlia.bencode import encode as bencode_encode
from kademlia.items import signing_bytes
from kademlia.node import DHTNode
from kademlia.simswarm import Churn, SimSwarm, weibull, weibull_median
from kademlia.timers import Loop
from tests.dht_helpers import Signer
from tests.hostile_nodes import hostile_mix

# kadchat.presence.PresencePublisher refreshes a presence record every 120 s.
REFRESH = 120.0


class ReadOnlyNode(DHTNode):
    """A BEP 43 read-only node (`ro=1` on its queries), so nobody adds it to a routing
    table: it publishes and looks up but never stores others' records. Owners are
    read-only so that keeping them alive through a scenario does not make them
    immortal replicas."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.protocol.read_only = True


class Owner:
    """A node that publishes one record and re-puts it with seq + 1 every `refresh` s."""

    def __init__(self, node, index, clock):
        self.node = node
        self.signer = Signer(10_000 + index)
        self.index = index
        self.clock = clock
        self.seq = 0
        self.item = None
        self.history = []  # every item published, oldest first
        self._loop = None

    @property
    def target(self):
        return self.item.target

    def publish(self):
        self.seq += 1
        self.item = self.signer.item({b"owner": self.index, b"seq": self.seq}, seq=self.seq)
        self.history.append(self.item)
        return self.node.put(self.item)

    def start(self, refresh=REFRESH):
        self._loop = Loop(self.clock, refresh, self._refresh)
        self._loop.start()

    def _refresh(self):
        self.publish().addErrback(lambda _: None)

    def stop(self):
        if self._loop is not None:
            self._loop.stop()


@dataclass
class Tally:
    """Outcome of a batch of lookups; `seconds` holds each finished lookup's duration."""

    lookups: int = 0
    found: int = 0
    newest: int = 0
    seconds: list = field(default_factory=list)

    @property
    def found_rate(self):
        return self.found / self.lookups if self.lookups else 0.0

    @property
    def newest_rate(self):
        return self.newest / self.lookups if self.lookups else 0.0

    @property
    def median_seconds(self):
        return statistics.median(self.seconds) if self.seconds else None

    def __add__(self, other):
        return Tally(self.lookups + other.lookups, self.found + other.found,
                     self.newest + other.newest, self.seconds + other.seconds)

    def describe(self):
        return (
            f"{self.found}/{self.lookups} lookups found the record ({self.found_rate:.2%}), "
            f"{self.newest}/{self.lookups} got the newest seq ({self.newest_rate:.2%}), "
            f"median {self.median_seconds or 0:.2f} s"
        )

    def as_dict(self):
        return {"lookups": self.lookups, "found_rate": round(self.found_rate, 5),
                "newest_rate": round(self.newest_rate, 5),
                "median_seconds": round(self.median_seconds or 0, 3)}


def publish(swarm, owners, limit=60.0):
    """Every owner puts its next seq; returns how many nodes accepted each put."""
    return swarm.run_all([owner.publish() for owner in owners], limit=limit)


def measure(swarm, owners, lookups, readers=None, limit=120.0):
    """`lookups` gets of random owners' records from random honest readers."""
    readers = readers if readers is not None else honest(swarm.nodes)
    rng = swarm.rng
    return measure_pairs(swarm, [(rng.choice(readers), rng.choice(owners)) for _ in range(lookups)],
                         limit)


def measure_pairs(swarm, pairs, limit=120.0):
    """A get by each reader of its owner's record, all started together; the
    newest seq is the one the owner last published."""
    expected = [owner.seq for _, owner in pairs]
    tally = Tally(lookups=len(pairs))
    clock, started = swarm.clock, swarm.clock.seconds()

    def timed(result):
        tally.seconds.append(clock.seconds() - started)
        return result

    results = swarm.run_all([reader.get(owner.target).addCallback(timed) for reader, owner in pairs],
                            limit=limit)
    for item, seq in zip(results, expected):
        if item is not None:
            tally.found += 1
            tally.newest += item.seq >= seq
    return tally


def honest(nodes):
    return [n for n in nodes if type(n) is DHTNode]


def build(count=0, seed=0, owners=0, factories=(), refresh=None, swarm=None, **options):
    """A seeded swarm: `count` honest nodes plus `(factory, how_many)` hostile ones,
    routing tables filled, and `owners` more read-only nodes, each an Owner with
    its first record put.
    `swarm`: a SimSwarm prepared by the caller (faults set up) to add to.

    The swarm's state is frozen out of the garbage collector's generations: with
    thousands of nodes every full collection would walk all routing tables
    (`release` gives it back)."""
    swarm = swarm or SimSwarm(seed=seed, **options)
    swarm.add(count)
    for factory, how_many in factories:
        swarm.add(how_many, factory)
    swarm.seed_routing_tables()
    storage = list(swarm.nodes)
    owner_nodes = swarm.add(owners, ReadOnlyNode)
    swarm.seed_routing_tables(owner_nodes, among=storage)
    gc.collect()
    gc.freeze()
    record_owners = [Owner(node, index, swarm.clock) for index, node in enumerate(owner_nodes)]
    publish(swarm, record_owners)
    if refresh:
        for owner in record_owners:
            owner.start(refresh)
    return swarm, record_owners


@contextlib.contextmanager
def running(count=0, seed=0, owners=0, factories=(), refresh=REFRESH, swarm=None, **options):
    """`build`, then `release` on the way out; yields (swarm, owners, leftovers)
    where `leftovers` (a list) receives the timers still pending after release."""
    swarm, record_owners = build(count, seed, owners, factories, refresh, swarm, **options)
    leftovers = []
    try:
        yield swarm, record_owners, leftovers
    finally:
        leftovers.extend(release(swarm, record_owners))


def release(swarm, owners=()):
    """Stop owners and nodes; returns the timers still pending (there should be none)."""
    for owner in owners:
        owner.stop()
    swarm.stop()
    swarm.clock.advance(5)
    gc.unfreeze()
    return swarm.clock.getDelayedCalls()


# -- scenarios -----------------------------------------------------------------
# Each runs one scenario and returns its figures as a dict; the tests assert on
# them at 2,000 nodes, bench/report.py prints them at smaller sizes.


def half_dies(seed=11, nodes=2000, owners=200, lookups=1000):
    """Half the nodes (never an owner) die at once; lookups right after, and one
    refresh later."""
    with running(nodes, seed, owners) as (swarm, record_owners, leftovers):
        swarm.kill_fraction(0.5, spare=[o.node for o in record_owners])
        right_after = measure(swarm, record_owners, lookups // 2)
        swarm.advance(REFRESH + 10)
        later = measure(swarm, record_owners, lookups)
    return {"right_after": right_after, "one_refresh_later": later, "timers_left": leftovers}


def session_churn(seed=12, nodes=2000, owners=200, lookups=800, duration=600.0,
                  shape=0.5, scale=40 * 60):
    """Nodes leave and come back with Weibull(shape, scale) sessions and downtimes
    while lookups run every quarter of `duration`."""
    with running(nodes, seed, owners) as (swarm, record_owners, leftovers):
        session = weibull(swarm.rng, shape, scale)
        churn = Churn(swarm, session=session, downtime=session,
                      spare=[o.node for o in record_owners])
        churn.start()
        tallies = []
        for _ in range(4):
            swarm.advance(duration / 4)
            tallies.append(measure(swarm, record_owners, lookups // 4))
        churn.stop()
    return {"tallies": tallies, "total": combine(tallies), "departures": churn.departures,
            "arrivals": churn.arrivals, "median_session": weibull_median(shape, scale),
            "timers_left": leftovers}


def split(seed=13, nodes=2000, owners=200, lookups=600, duration=600.0):
    """The network splits in two halves for `duration`, then heals. Owners keep
    refreshing on their side throughout. Convergence is checked one refresh after
    the heal on the k closest live nodes of each record (where every lookup
    reads); copies lagging elsewhere are counted (never served, they die with
    their TTL)."""
    with running(nodes, seed, owners) as (swarm, record_owners, leftovers):
        shuffled = list(swarm.nodes)
        swarm.rng.shuffle(shuffled)
        halves = [shuffled[: nodes // 2], shuffled[nodes // 2:]]
        side = {id(n): i for i, half in enumerate(halves) for n in half}
        swarm.network.partition([[n.address for n in half] for half in halves])
        swarm.advance(duration / 2)
        same = measure_sides(swarm, record_owners, lookups // 2, halves, side, across=False)
        across = measure_sides(swarm, record_owners, lookups // 2, halves, side, across=True)
        swarm.advance(duration / 2)
        swarm.network.heal()
        swarm.advance(REFRESH + 10)
        closest = replica_state(swarm, record_owners)
        after = measure(swarm, record_owners, lookups)
    return {"same_side": same, "across": across, "after_heal": after,
            "one_refresh_after_heal": closest, "timers_left": leftovers}


def replica_state(swarm, owners):
    """How many records have all their k closest live nodes holding the newest seq,
    and how many copies anywhere lag behind their owner's newest seq."""
    k = swarm.settings.k
    keyed = [(int.from_bytes(n.node_id, "big"), n) for n in swarm.nodes
             if not isinstance(n, ReadOnlyNode)]
    converged = lagging = copies = 0
    for owner in owners:
        target = int.from_bytes(owner.target, "big")
        nearest = sorted(keyed, key=lambda pair: pair[0] ^ target)[:k]
        held = [n.store.get(owner.target) for _, n in nearest]
        converged += all(h is not None and h[0].seq == owner.seq for h in held)
        for node in swarm.holders(owner.target):
            copies += 1
            lagging += node.store.get(owner.target)[0].seq < owner.seq
    return {"records_converged": converged / len(owners), "copies": copies,
            "lagging_copies": lagging}


def measure_sides(swarm, owners, lookups, halves, side, across):
    """Lookups from readers on the owner's side of a partition, or the other side."""
    rng = swarm.rng
    pairs = []
    for _ in range(lookups):
        owner = rng.choice(owners)
        mine = side[id(owner.node)]
        pairs.append((rng.choice(honest(halves[1 - mine] if across else halves[mine])), owner))
    return measure_pairs(swarm, pairs)


def combine(tallies):
    return sum(tallies, Tally())


def slow_links(low=0.1, high=0.3):
    """Latency function: each address gets its own access delay in [low, high) s
    (derived from the address, so it is stable), a link adds both ends."""
    def delay(address):
        return low + (high - low) * (zlib.crc32(repr(address).encode()) / 2**32)
    return lambda src, dst, rng: delay(src) + delay(dst)


def link_faults(kind, seed=14, nodes=2000, owners=200, lookups=600, loss=0.3,
                bandwidth=8000, queue=16000, nat_share=0.2):
    """Lookups over faulty links. `kind`: "bandwidth" (every uplink limited to
    `bandwidth` bytes/s with a `queue`-byte buffer), "slow" (200-600 ms links),
    "lossy" (`loss` of all datagrams dropped), "partial" (a `nat_share` of nodes
    cannot reach one another, both ways, while everyone else reaches them)."""
    options = {"slow": {"latency": slow_links()}, "lossy": {"loss": loss}}.get(kind, {})
    swarm = SimSwarm(seed=seed, **options)
    swarm.add(nodes)
    if kind == "bandwidth":
        for node in swarm.nodes:
            swarm.network.set_bandwidth(node.address, bandwidth, queue)
    elif kind == "partial":
        natted = swarm.rng.sample(swarm.nodes, round(nat_share * nodes))
        for a in natted:
            for b in natted:
                if a is not b:
                    swarm.network.block(a.address, b.address)
    with running(swarm=swarm, seed=seed, owners=owners) as (swarm, record_owners, leftovers):
        tally = measure(swarm, record_owners, lookups)
        swarm.advance(REFRESH + 10)
        later = measure(swarm, record_owners, lookups)
    return {"lookups": tally, "one_refresh_later": later,
            "drops": dict(swarm.network.drops), "timers_left": leftovers}


def hostile(fraction, kinds=("drop", "stale", "forge"), seed=15, nodes=2000, owners=200,
            lookups=600, **options):
    """A `fraction` of the nodes are hostile (`kinds` in equal shares); honest
    readers look up honest owners' records right after publishing and one
    refresh later. `options` go to SimSwarm (e.g. settings)."""
    factories, honest_count = hostile_mix(nodes, fraction, kinds)
    with running(honest_count, seed, owners, factories, **options) as (swarm, record_owners,
                                                                       leftovers):
        first = measure(swarm, record_owners, lookups)
        swarm.advance(REFRESH + 10)
        later = measure(swarm, record_owners, lookups)
    return {"right_after": first, "one_refresh_later": later, "timers_left": leftovers}


# -- poisoning -----------------------------------------------------------------


class Attacker:
    """One address sending hand-made puts straight to storage nodes, with valid
    write tokens (it asks for them with get, as anyone may)."""

    def __init__(self, swarm):
        self.swarm = swarm
        self.node = swarm.add(1)[0]  # a plain node used as a KRPC client
        swarm.seed_routing_tables([self.node], among=[n for n in swarm.nodes
                                                      if not isinstance(n, ReadOnlyNode)])
        self.outcomes = {}  # attack name -> Counter of "accepted" / KRPC error codes
        self._key = SigningKey(hashlib.sha256(b"attacker").digest())
        self.public_key = bytes(self._key.verify_key)

    def replicas(self, target):
        """The storage nodes of `target`, with a write token from each."""
        found = self.swarm.run_all([self.node.find_node(target)])[0] or []
        gets = [self.node.query_contact(c.node_id, c.address, b"get", {b"target": target})
                for c in found]
        answers = self.swarm.run_all(gets, limit=10)
        return [(c, a.values[b"token"]) for c, a in zip(found, answers)
                if a is not None and isinstance(a.values.get(b"token"), bytes)]

    def put(self, attack, replica, token, args):
        """Send one put; its outcome is counted under `attack`."""
        d = self.node.query_contact(replica.node_id, replica.address, b"put",
                                    dict(args, token=token))
        tally = self.outcomes.setdefault(attack, Counter())

        def accepted(_):
            tally["accepted"] += 1

        def refused(failure):
            error = failure.value
            tally[getattr(error, "code", type(error).__name__)] += 1

        d.addCallbacks(accepted, refused)
        return d

    def signed(self, v, seq, salt=b""):
        """An item signed by the attacker's own key, sizes unchecked."""
        sig = self._key.sign(signing_bytes(salt, seq, bencode_encode(v))).signature
        args = {"k": self.public_key, "seq": seq, "v": v, "sig": sig}
        if salt:
            args["salt"] = salt
        return args


def item_args(item, **changes):
    args = {"k": item.k, "seq": item.seq, "v": item.v, "sig": item.sig}
    if item.salt:
        args["salt"] = item.salt
    args.update(changes)
    return args


def poisoning(seed=16, nodes=2000, owners=100, attacked=20, flood=150, lookups=500):
    """One attacker address floods the replicas of `attacked` honest records with
    forged signatures, tampered values, replayed older seqs, inflated TTLs and
    oversized values, and floods a few replicas with `flood` validly signed
    items of its own. Returns the outcome of each attack, what the replicas
    hold afterwards and lookups of the honest records."""
    with running(nodes, seed, owners) as (swarm, record_owners, leftovers):
        publish(swarm, record_owners)  # seq 2: seq 1 is an older genuine item to replay
        attacker = Attacker(swarm)
        max_ttl = swarm.settings.max_ttl
        flooded = []
        for owner in record_owners[:attacked]:
            current, older = owner.item, owner.history[0]
            puts = []
            for replica, token in attacker.replicas(owner.target):
                puts += [
                    attacker.put("forged signature", replica, token,
                                 item_args(current, seq=current.seq + 1, v=b"evil",
                                           sig=hashlib.sha512(replica.node_id).digest())),
                    attacker.put("tampered value", replica, token,
                                 item_args(current, seq=current.seq + 1, v=b"evil")),
                    attacker.put("replayed older seq", replica, token, item_args(older)),
                    attacker.put("replayed older seq, huge ttl", replica, token,
                                 item_args(older, ttl=2**40)),
                    attacker.put("inflated ttl", replica, token, item_args(current, ttl=2**40)),
                    attacker.put("oversized value", replica, token,
                                 attacker.signed(b"x" * 1200, 1)),
                    attacker.put("oversized salt", replica, token,
                                 attacker.signed(b"x", 1, salt=b"s" * 100)),
                ]
                if len(flooded) < 8:
                    flooded.append(replica)
                    puts += [attacker.put("store flood", replica, token,
                                          attacker.signed(b"flood %d" % i, 1, salt=b"%d" % i))
                             for i in range(flood)]
            swarm.run_all(puts, limit=10)
        # A query flood from the same address at one replica: the per-IP rate limit
        # answers at most a burst's worth.
        victim = flooded[0]
        pings = swarm.run_all([attacker.node.query_contact(None, victim.address, b"ping", {})
                               for _ in range(2000)], limit=10)
        attacker.outcomes["2000 pings at once"] = {
            "answered": sum(p is not None for p in pings),
            "dropped": sum(p is None for p in pings)}
        by_id = {n.node_id: n for n in swarm.nodes}
        deadline_excess = max(
            (node.store.get(o.target)[1] - max_ttl for o in record_owners
             for node in swarm.holders(o.target)), default=0.0)
        intact = sum(
            all(node.store.get(o.target)[0] == o.item for node in swarm.holders(o.target))
            and len(swarm.holders(o.target)) >= swarm.settings.k
            for o in record_owners[:attacked])
        flood_held = [len(by_id[r.node_id].store) for r in flooded if r.node_id in by_id]
        after = measure(swarm, record_owners, lookups)
    return {"outcomes": {name: dict(c) for name, c in attacker.outcomes.items()},
            "records_intact": intact / attacked, "ttl_beyond_cap": deadline_excess,
            "most_items_on_a_flooded_node": max(flood_held, default=0),
            "per_ip_quota": swarm.settings.max_items_per_ip,
            "lookups": after, "timers_left": leftovers}
