"""A whole DHT swarm in one process: join, put/get latency, lookup cost, churn.

On real UDP over loopback (each node on its own 127.0.x.y address), or with
--sim on the in-memory simulator (kademlia.sim: virtual clock, 10-50 ms links),
where latencies are virtual seconds and 10,000 nodes fit. The scenario:

1. N nodes join, `--batch` at a time, each bootstrapping through the first;
2. `--items` puts of fresh signed items from random nodes, then `--gets` gets
   from random nodes one at a time (put/get latency, messages and hops per
   lookup, success), `--gets` more to measure process CPU per get, and
   `--gets` more with `--concurrency` in flight at once (latency, CPU per get);
3. 30% of the nodes are stopped silently (no goodbye: their sockets close);
   again gets of the earlier items and fresh puts/gets, from survivors.

Hops are the lookup's depth: one more than the number of referrals that led
from the getter's own routing table to the nearest node that answered. CPU per
get is the whole process's (the getter, every node it asks, their replies),
measured on gets whose hops are not counted (that decodes every answer again).

The baseline runs first, in its own process: the same scenario and seed with
the `kademlia/` package of git revision `--baseline` (by default the code
before the cheaper lookup of issue 14; `--baseline none` skips it). Prints one
JSON object (this code's figures at the top level, the baseline's under
"baseline", the headline figures side by side under "summary"); asserts
nothing. `--profile PREFIX` writes cProfile stats of each round's gets to
PREFIX-<round>.pstats (read them with `python3 -m pstats`).

    python3 bench/dht_swarm.py --nodes 500
    python3 bench/dht_swarm.py --sim [--nodes 10000]
"""

import argparse
import cProfile
import gc
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from twisted.internet import defer, task

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# The baseline run's old `kademlia/` package goes before ours (see run_baseline).
KADEMLIA_FROM = "DHT_SWARM_KADEMLIA_FROM"
if os.environ.get(KADEMLIA_FROM):
    sys.path.insert(0, os.environ[KADEMLIA_FROM])
# The code before the cheaper lookup (issue 14).
BASELINE_REV = "ef42472"

import kademlia.node  # noqa: E402
from kademlia import krpc  # noqa: E402
from kademlia.lookup import Lookup  # noqa: E402
from kademlia.node import DHTNode  # noqa: E402
from kademlia.settings import DHTSettings  # noqa: E402
from tests.dht_helpers import BootstrapSwarm, Signer, loopback_address  # noqa: E402


class MeasuredLookup(Lookup):
    """A Lookup that also records its query count and depth in `finished`."""

    finished = []  # (queries sent, hops) per lookup, reset by the scenario
    recording = True  # False: a plain Lookup

    def start(self, seeds):
        self.recorded = MeasuredLookup.recording
        if not self.recorded:
            return super().start(seeds)
        self.depth = {c.node_id: 0 for c in seeds}
        return super().start(seeds).addCallback(self._record)

    def _answered(self, response, candidate):
        if not self.recorded:
            return super()._answered(response, candidate)
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
    def timed_get(self, item, times):
        got, seconds = yield self.timed(lambda: self.rng.choice(self.live).get(item.target))
        times.append(seconds)
        return got == item

    @defer.inlineCallbacks
    def concurrent_gets(self, items):
        """`--gets` gets, `--concurrency` of them in flight at any moment."""
        times, found = [], []
        todo = iter([self.rng.choice(items) for _ in range(self.args.gets)])

        @defer.inlineCallbacks
        def worker():
            for item in todo:
                found.append((yield self.timed_get(item, times)))

        cpu_before = time.process_time()
        yield defer.gatherResults([worker() for _ in range(self.args.concurrency)])
        return {
            "in_flight": self.args.concurrency,
            "get_ms": percentiles(times),
            "cpu_per_get_ms": round(1000 * (time.process_time() - cpu_before) / len(times), 3),
            "get_success_rate": round(sum(found) / len(found), 4),
        }

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
            found += yield self.timed_get(self.rng.choice(items), get_times)
        get_lookups = MeasuredLookup.finished
        # CPU is measured without the hop counting, which decodes every answer again.
        MeasuredLookup.recording = False
        profile = cProfile.Profile() if self.args.profile else None
        if profile:
            profile.enable()
        cpu_before = time.process_time()
        for _ in range(self.args.gets):
            yield self.timed_get(self.rng.choice(items), [])
        cpu_per_get = 1000 * (time.process_time() - cpu_before) / self.args.gets
        concurrent = yield self.concurrent_gets(items)
        if profile:
            profile.disable()
            profile.dump_stats(f"{self.args.profile}-{label}.pstats")
        MeasuredLookup.recording = True
        hops = [h for _, h in get_lookups if h is not None]
        return items, {
            "put_ms": percentiles(put_times),
            "put_accepted_mean": round(sum(accepted) / len(accepted), 2),
            "get_ms": percentiles(get_times),
            "cpu_per_get_ms": round(cpu_per_get, 3),
            "get_success_rate": round(found / len(get_times), 4),
            "concurrent_gets": concurrent,
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
        items, report["before_churn"] = yield self.put_get_round([], "before_churn")
        victims = self.rng.sample(self.live, int(len(self.live) * self.args.kill))
        yield defer.gatherResults([n.stop() for n in victims])
        dead = set(map(id, victims))
        self.live = [n for n in self.live if id(n) not in dead]
        after = f"after_silently_stopping_{int(self.args.kill * 100)}pct"
        _, report[after] = yield self.put_get_round(items, after)
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
              "process_cpu_seconds": round(time.process_time(), 2),
              "load_average": [round(x, 2) for x in os.getloadavg()], **report}
    if args.baseline_report is not None:
        report["baseline"] = args.baseline_report
        report["summary"] = summary(report, args.baseline_report)
    print(json.dumps(report, indent=2))


def summary(current, baseline):
    """The headline figures, {"this": ..., "baseline": ...} each."""
    def pick(report):
        rounds = [key for key in report if key.startswith("after_silently")]
        before, after = report["before_churn"], report[rounds[0]]
        return {
            "cpu_per_get_ms": before["cpu_per_get_ms"],
            "concurrent_cpu_per_get_ms": before["concurrent_gets"]["cpu_per_get_ms"],
            "after_churn_concurrent_get_p50_ms": after["concurrent_gets"]["get_ms"]["p50"],
            "after_churn_concurrent_get_p95_ms": after["concurrent_gets"]["get_ms"]["p95"],
            "after_churn_get_success_rate": after["concurrent_gets"]["get_success_rate"],
        }

    ours, theirs = pick(current), pick(baseline)
    return {name: {"this": ours[name], "baseline": theirs[name]} for name in ours}


def run_baseline(args, argv):
    """This scenario on the `kademlia/` package of git revision `args.baseline`, in
    a process of its own (one package of that name per process); its report."""
    with tempfile.TemporaryDirectory() as old:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.baseline, "kademlia"],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", old], input=archive, check=True)
        done = subprocess.run(
            [sys.executable, __file__, *argv, "--baseline", "none", "--profile", ""],
            env={**os.environ, KADEMLIA_FROM: old}, check=True, capture_output=True, text=True,
        )
    report = json.loads(done.stdout)
    report["rev"] = args.baseline
    return report


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
    parser.add_argument("--concurrency", type=int, default=25, help="gets in flight at once, second batch")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--baseline", default=BASELINE_REV,
                        help=f"git revision whose kademlia/ runs the same scenario first (default {BASELINE_REV}; none: skip)")
    parser.add_argument("--profile", metavar="PREFIX", default="",
                        help="write cProfile stats of each round's gets to PREFIX-<round>.pstats")
    args = parser.parse_args(argv)
    args.nodes = args.nodes or (10_000 if args.sim else 200)
    args.baseline_report = None if args.baseline == "none" else run_baseline(args, argv)
    (run_sim if args.sim else run_loopback)(args)


if __name__ == "__main__":
    main(sys.argv[1:])
