"""A whole DHT swarm in one process: join, put/get latency, lookup cost, churn.

On real UDP over loopback (each node on its own 127.0.x.y address), or with
--sim on the in-memory simulator (kademlia.sim: virtual clock, 10-50 ms links),
where latencies are virtual seconds and 10,000 nodes fit. The scenario:

1. N nodes join, `--batch` at a time, each bootstrapping through the first;
2. `--items` puts of fresh signed items from random nodes, then `--gets` gets
   from random nodes (put/get latency, messages and hops per lookup, success);
3. 30% of the nodes are stopped silently (no goodbye: their sockets close);
   again gets of the earlier items and fresh puts/gets, from survivors.

Hops are the lookup's depth: one more than the number of referrals that led
from the getter's own routing table to the nearest node that answered.
Prints one JSON object; asserts nothing.

    python3 bench/dht_swarm.py --nodes 200
    python3 bench/dht_swarm.py --sim [--nodes 10000]
"""

import argparse
import gc
import json
import random
import sys
import time
from pathlib import Path

from twisted.internet import defer, task

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import kademlia.node  # noqa: E402
from kademlia import krpc  # noqa: E402
from kademlia.lookup import Lookup  # noqa: E402
from kademlia.node import DHTNode  # noqa: E402
from kademlia.settings import DHTSettings  # noqa: E402
from tests.dht_helpers import BootstrapSwarm, Signer, loopback_address  # noqa: E402


class MeasuredLookup(Lookup):
    """A Lookup that also records its query count and depth in `finished`."""

    finished = []  # (queries sent, hops) per lookup, reset by the scenario

    def start(self, seeds):
        self.depth = {c.node_id: 0 for c in seeds}
        return super().start(seeds).addCallback(self._record)

    def _answered(self, response, candidate):
        depth = self.depth.get(candidate.node_id, 0) + 1
        try:
            referred = krpc.decode_nodes(response.values.get(b"nodes", b""))
        except krpc.MalformedMessage:
            referred = []
        for node_id, _ in referred:
            self.depth.setdefault(node_id, depth)
        return super()._answered(response, candidate)

    def _record(self, answered):
        hops = 1 + self.depth.get(answered[0].node_id, 0) if answered else None
        MeasuredLookup.finished.append((self.queries_sent, hops))
        return answered


kademlia.node.Lookup = MeasuredLookup  # measure every lookup the nodes run


def percentiles(values, scale=1000.0):
    if not values:
        return None
    ordered = sorted(values)

    def rank(p):
        return round(ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * scale, 2)

    return {"p50": rank(50), "p95": rank(95), "p99": rank(99), "max": round(ordered[-1] * scale, 2)}


def rss_bytes():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class Scenario:
    def __init__(self, args, now, make_node):
        self.args = args
        self.now = now
        self.make_node = make_node
        self.rng = random.Random(args.seed)
        self.nodes = []
        self.live = []

    @defer.inlineCallbacks
    def timed(self, d_factory):
        started = self.now()
        result = yield d_factory()
        return result, self.now() - started

    @defer.inlineCallbacks
    def join(self):
        rss_before, cpu_before, started = rss_bytes(), time.process_time(), self.now()
        self.nodes = [self.make_node(i) for i in range(self.args.nodes)]
        first = self.nodes[0]
        sent_before = self.messages()
        joined = self.nodes[1:]
        for start in range(0, len(joined), self.args.batch):
            yield defer.gatherResults([n.bootstrap([first.address]) for n in joined[start : start + self.args.batch]])
            # Many nodes in one process: keep the settled state out of full GC passes.
            gc.freeze()
        self.live = list(self.nodes)
        sizes = [len(n.routing_table) for n in self.nodes]
        return {
            "seconds": round(self.now() - started, 3),
            "cpu_seconds": round(time.process_time() - cpu_before, 2),
            "per_node_ms": round(1000 * (self.now() - started) / len(self.nodes), 3),
            "messages_per_node": round((self.messages() - sent_before) / len(self.nodes), 1),
            "routing_table": {"mean": round(sum(sizes) / len(sizes), 1), "min": min(sizes)},
            "rss_per_node_bytes": (rss_bytes() - rss_before) // len(self.nodes),
        }

    def messages(self):
        return sum(n.protocol.stats.sent for n in self.nodes)

    @defer.inlineCallbacks
    def put_get_round(self, items, label):
        MeasuredLookup.finished = []
        put_times, accepted = [], []
        new_items = [Signer(self.rng.randrange(2**31)).item(b"%s %d" % (label.encode(), n)) for n in range(self.args.items)]
        for item in new_items:
            count, seconds = yield self.timed(lambda: self.rng.choice(self.live).put(item))
            put_times.append(seconds)
            accepted.append(count)
        items = items + new_items
        put_lookups = MeasuredLookup.finished
        MeasuredLookup.finished = []
        get_times, found = [], 0
        for _ in range(self.args.gets):
            item = self.rng.choice(items)
            got, seconds = yield self.timed(lambda: self.rng.choice(self.live).get(item.target))
            get_times.append(seconds)
            found += got == item
        get_lookups = MeasuredLookup.finished
        hops = [h for _, h in get_lookups if h is not None]
        return items, {
            "put_ms": percentiles(put_times),
            "put_accepted_mean": round(sum(accepted) / len(accepted), 2),
            "get_ms": percentiles(get_times),
            "get_success_rate": round(found / len(get_times), 4),
            "messages_per_get_lookup": round(sum(q for q, _ in get_lookups) / len(get_lookups), 2),
            "messages_per_put_lookup": round(sum(q for q, _ in put_lookups) / max(1, len(put_lookups)), 2),
            "hops": {
                "mean": round(sum(hops) / len(hops), 2),
                "p50": sorted(hops)[len(hops) // 2],
                "max": max(hops),
            },
        }

    @defer.inlineCallbacks
    def run(self):
        report = {"nodes": self.args.nodes, "join": (yield self.join())}
        items, report["before_churn"] = yield self.put_get_round([], "before")
        victims = self.rng.sample(self.live, int(len(self.live) * self.args.kill))
        yield defer.gatherResults([n.stop() for n in victims])
        dead = set(map(id, victims))
        self.live = [n for n in self.live if id(n) not in dead]
        _, report[f"after_silently_stopping_{int(self.args.kill * 100)}pct"] = yield self.put_get_round(items, "after")
        yield defer.gatherResults([n.stop() for n in self.live])
        gc.unfreeze()
        return report


def run_loopback(args):
    def main(reactor):
        settings = DHTSettings(stall_floor=args.stall_floor)

        def make_node(index):
            node = DHTNode(reactor, settings=settings)
            node.listen(0, loopback_address(index))
            return node

        scenario = Scenario(args, reactor.seconds, make_node)
        return scenario.run().addCallback(lambda report: emit(args, "loopback", report, "wall ms"))

    task.react(main)


def run_sim(args):
    swarm = BootstrapSwarm(seed=args.seed, settings=DHTSettings(stall_floor=args.stall_floor))

    def make_node(index):
        return swarm.add_node()

    scenario = Scenario(args, swarm.clock.seconds, make_node)
    report = swarm.run(scenario.run(), timeout=10**7)
    report["network"] = {"datagrams": swarm.network.sent, "dropped": swarm.network.dropped}
    emit(args, "sim", report, "virtual ms (simulated 10-50 ms links)")


def emit(args, mode, report, unit):
    report = {"benchmark": "dht_swarm", "mode": mode, "latency_unit": unit, "seed": args.seed,
              "stall_floor": args.stall_floor, "join_batch": args.batch,
              "process_cpu_seconds": round(time.process_time(), 2), **report}
    print(json.dumps(report, indent=2))


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, help="swarm size (default 200, or 10000 with --sim)")
    parser.add_argument("--sim", action="store_true", help="run on the simulator instead of loopback UDP")
    parser.add_argument("--items", type=int, default=50, help="puts per round")
    parser.add_argument("--gets", type=int, default=200, help="gets per round")
    parser.add_argument("--kill", type=float, default=0.3, help="fraction of nodes stopped silently")
    parser.add_argument("--batch", type=int, default=50, help="nodes bootstrapping at once")
    parser.add_argument("--stall-floor", type=float, default=DHTSettings.stall_floor,
                        help="shortest adaptive stall timeout, seconds (DHTSettings.stall_floor)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    args.nodes = args.nodes or (10_000 if args.sim else 200)
    (run_sim if args.sim else run_loopback)(args)


if __name__ == "__main__":
    main(sys.argv[1:])
