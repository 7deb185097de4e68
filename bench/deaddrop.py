"""Dead drops under churn: are messages for an offline contact still there when they return?

    python3 bench/deaddrop.py [--nodes 2000] [--pairs 200] [--messages 5]
                              [--spans 1,2,4,8,12,24,36,48] [--replaced 0.3] [--seed 1]
                              [--refresh 300] [--node-upkeep]

A simulated swarm (kademlia.simswarm) of `--nodes` storage nodes accepting the
drops' 50 h ttl, `--replaced` of them replaced per hour (a node leaves silently
after an exponential session and a new node, new id and address, empty store,
joins through three random live nodes). `--pairs` senders (read-only clients,
so they store nothing for others) each write `--messages` messages for an
offline contact with kadchat.mailbox's DropWriter, wait until every drop is
stored, and leave for good. Each recipient returns after one of `--spans`
hours (all recipients on the one virtual clock, each at its own time): a
new client joins, runs one DropReader pass at once (lookups paced
as the client paces them, kadchat.mailbox.LOOKUP_RATE) and one more
`--refresh` seconds later. Printed per span: drops read in the first pass and
within one refresh, duplicates, delivery time from the recipient's start, and
the DHT bytes per message (datagrams sent and received by sender and recipient,
and bytes held by storage nodes per message at write time: replicas x item).

Prints one JSON document (and a line per recipient on stderr).

Cost: BEP 5 table upkeep alone (pings, bucket refreshes) is about 500
datagrams a virtual second at 2,000 nodes, hours of CPU for 48 h. So the
storage nodes' own upkeep is off and kademlia.simswarm.RoutingUpkeep does
its job every 15 minutes (dead contacts forgotten, live ones learnt as a
long-lived table would have them); `--node-upkeep` runs the nodes' own
instead. Everything about the drops is the nodes' code: puts, gets with
read-repair, hand-over to newcomers, republication (DHTNode.republish: a
51 h item about hourly, by whichever replica's turn comes first).
`--pairs 80` (400 drops, 2,000 nodes, 1 to 48 h) took 30 minutes of CPU;
the default (1,000 drops) about 40 s of CPU per simulated hour.
"""

import argparse
from collections import defaultdict
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nacl.signing import SigningKey  # noqa: E402
from twisted.internet import defer, task  # noqa: E402

from kadchat.deaddrop import DROP_TTL, Pair, slot_of  # noqa: E402
from kadchat.dropstore import DropStore  # noqa: E402
from kadchat.history import History  # noqa: E402
from kadchat.mailbox import LOOKUP_RATE, DropReader, DropWriter, DHTCalls  # noqa: E402
from kadchat.model import MessageState  # noqa: E402

from kademlia.settings import DHTSettings  # noqa: E402
from kademlia.simswarm import RoutingUpkeep, SimSwarm  # noqa: E402
from tests.scenario_recipes import ReadOnlyNode  # noqa: E402

T0 = 1_800_000_000.0  # the wall clock the clients read at simulated time 0


class WallClock:
    """The simulator's clock as the clients see it: unix time, not time since the start."""

    def __init__(self, clock):
        self._clock = clock

    def seconds(self):
        return T0 + self._clock.seconds()

    def callLater(self, delay, fn, *args, **kw):
        return self._clock.callLater(delay, fn, *args, **kw)

    def getDelayedCalls(self):
        return self._clock.getDelayedCalls()


class Replacement:
    """Each storage node leaves after Exp(mean) seconds; a fresh node joins in its place."""

    def __init__(self, swarm, per_hour, spare):
        self.swarm = swarm
        self.mean = 3600.0 / per_hour
        self.spare = set(map(id, spare))
        self.replaced = 0

    def start(self):
        for node in list(self.swarm.nodes):
            if id(node) not in self.spare:
                self._schedule(node)

    def _schedule(self, node):
        self.swarm.clock.callLater(self.swarm.rng.expovariate(1 / self.mean), self._replace, node)

    def _replace(self, node):
        if node not in self.swarm.nodes:
            return
        self.swarm.kill(node)
        self.replaced += 1
        [new], _ = self.swarm.join(1)
        self._schedule(new)


class Traffic:
    """Bytes of datagrams to and from the clients' addresses (a hook on the simulated network)."""

    def __init__(self, network):
        self.by_address = defaultdict(int)
        self.watched = set()
        send = network._send

        def counting(src, data, dst):
            for end in (src, dst):
                if end in self.watched:
                    self.by_address[end] += len(data)
            return send(src, data, dst)
        network._send = counting

    def watch(self, address):
        self.watched.add(address)


def run(args):
    started = time.monotonic()
    spans = [float(s) for s in args.spans.split(",")]
    upkeep = {} if args.node_upkeep else dict(maintenance_interval=10.0 ** 9)
    swarm = SimSwarm.build(args.nodes, seed=args.seed, settings=DHTSettings(max_ttl=DROP_TTL, **upkeep))
    if not args.node_upkeep:
        RoutingUpkeep(swarm, serves=lambda node: not isinstance(node, ReadOnlyNode)).start()
    traffic = Traffic(swarm.network)
    wall = WallClock(swarm.clock)
    tmp = Path(tempfile.mkdtemp(prefix="deaddrop-bench-"))
    churn = Replacement(swarm, args.replaced, spare=())
    churn.start()
    swarm.advance(600)  # churn under way before anything is written

    # -- senders write, then leave -------------------------------------------------
    senders, writes, stored_at = [], [], {}
    clients, _ = swarm.join(args.pairs, factory=ReadOnlyNode)
    swarm.run_all([c.bootstrap(swarm.entry_points(3)) for c in clients], limit=60)
    for c in clients:
        traffic.watch(c.address)
    for i, node in enumerate(clients):
        a, b = SigningKey(i.to_bytes(4, "big") * 8), SigningKey((10**6 + i).to_bytes(4, "big") * 8)
        a_key, b_key = bytes(a.verify_key), bytes(b.verify_key)
        history = History(tmp / f"a{i}.sqlite3")
        for n in range(args.messages):
            history.add_outgoing(b_key, (i * 1000 + n).to_bytes(16, "big"), f"message {n} of pair {i}",
                                 wall.seconds())
        net = DHTCalls(wall, node, rate=LOOKUP_RATE)
        pair = Pair(a, b_key)

        def set_state(peer, message_id, state, history=history):
            if history.set_state(peer, message_id, state) and state == MessageState.STORED:
                stored_at[message_id] = wall.seconds()
        writer = DropWriter(wall, net, lambda peer, pair=pair: pair, DropStore(tmp / f"a{i}.db"), history,
                            lambda peer: False, set_state)
        senders.append(dict(node=node, net=net, a=a, b=b, a_key=a_key, b_key=b_key))
        writes.append(writer.write(b_key))
    swarm.run_all(writes, limit=300)
    stored = len(stored_at)
    held = [len(swarm.holders(item.target)) for i, s in enumerate(senders)
            for item in _items(tmp / f"a{i}.db")]
    write_bytes = sum(traffic.by_address[c.address] for c in clients)
    for s in senders:
        swarm.kill(s["node"])  # senders quit for good

    # -- recipients come back after their span -------------------------------------
    results = {span: dict(drops=0, first=0, refresh=0, duplicates=0, times=[], bytes=0) for span in spans}
    t_written = swarm.clock.seconds()
    returns = []
    for i, sender in enumerate(senders):
        span = spans[i % len(spans)]
        d = task.deferLater(swarm.clock, span * 3600 + swarm.rng.uniform(0, 60), _recipient_returns,
                            swarm, wall, traffic, sender, i, tmp, args, results[span], span)
        returns.append(d)
    swarm.run_all(returns, limit=max(spans) * 3600 + 60 + 2 * args.refresh + 600, step=60.0)
    out = dict(nodes=args.nodes, pairs=args.pairs, messages=args.messages, replaced_per_hour=args.replaced,
               seed=args.seed, stored=f"{stored}/{args.pairs * args.messages}",
               replicas_at_write=statistics.mean(held) if held else 0,
               sender_bytes_per_message=round(write_bytes / max(1, args.pairs * args.messages)),
               storage_bytes_per_message=round(statistics.mean(held) * 944) if held else 0,
               nodes_replaced=churn.replaced, table_upkeep="nodes" if args.node_upkeep else "simulator",
               datagrams=swarm.network.sent, wall_seconds=round(time.monotonic() - started),
               spans=[])
    total = dict(drops=0, first=0, refresh=0)
    for span in spans:
        r = results[span]
        for key in total:
            total[key] += r[key]
        out["spans"].append(dict(
            hours=span, drops=r["drops"], read_first_pass=r["first"], read_within_refresh=r["refresh"],
            rate=round(r["refresh"] / max(1, r["drops"]), 4), duplicates=r["duplicates"],
            delivery_seconds_median=round(statistics.median(r["times"]), 2) if r["times"] else None,
            delivery_seconds_max=round(max(r["times"]), 2) if r["times"] else None,
            recipient_bytes_per_message=round(r["bytes"] / max(1, r["drops"]))))
    out["total"] = dict(total, rate_first_pass=round(total["first"] / max(1, total["drops"]), 5),
                        rate_within_refresh=round(total["refresh"] / max(1, total["drops"]), 5))
    return out


def _items(path):
    store = DropStore(path)
    try:
        return [d.item for d in store.drops()]
    finally:
        store.close()


@defer.inlineCallbacks
def _recipient_returns(swarm, wall, traffic, sender, i, tmp, args, result, span):
    """b starts `span` hours after a left: joins, reads at once and once more a refresh later."""
    start = swarm.clock.seconds()
    [node], joined = swarm.join(1, factory=ReadOnlyNode)
    traffic.watch(node.address)
    seen = {}

    def deliver(peer, message, base):
        if message.id in seen:
            result["duplicates"] += 1
        seen.setdefault(message.id, swarm.clock.seconds() - start)
    pair = Pair(sender["b"], sender["a_key"])
    store = DropStore(tmp / f"b{i}.db")
    store.set_read_slot(sender["a_key"], slot_of(wall.seconds() - span * 3600) - 1)  # last online: then
    reader = DropReader(wall, DHTCalls(wall, node, rate=LOOKUP_RATE), lambda peer: pair, store, deliver)
    yield joined
    yield reader.read(sender["a_key"])
    first = len(seen)
    yield task.deferLater(swarm.clock, args.refresh, lambda: None)
    yield reader.read(sender["a_key"])
    result["drops"] += args.messages
    result["first"] += first
    result["refresh"] += len(seen)
    result["times"] += list(seen.values())
    result["bytes"] += traffic.by_address[node.address]
    swarm.kill(node)
    print(f"{span:g} h: {result['refresh']}/{result['drops']} read", file=sys.stderr)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=2000)
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--messages", type=int, default=5)
    parser.add_argument("--spans", default="1,2,4,8,12,24,36,48")
    parser.add_argument("--replaced", type=float, default=0.3)
    parser.add_argument("--refresh", type=float, default=300.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--node-upkeep", action="store_true",
                        help="the storage nodes keep their routing tables themselves (slow)")
    print(json.dumps(run(parser.parse_args()), indent=2))


if __name__ == "__main__":
    main()
