"""What a stranger can make one DHT node do, next to baselines from the same run.

A stranger is a source that has not proven its address; spoofing makes every
source a stranger (tests/test_dht_spoofing.py asserts the bounds, this prints
the figures). Each measurement is a function returning rows
`(measurement, case, figure, baseline)`; `MEASUREMENTS` lists them and
`main` prints all rows as one table, so more measurements can be appended.

- amplification: bytes sent to a spoofed victim over bytes spoofed in its
  name, per request type, against a real dedicated_server.py on 127.0.0.1
  (raw sockets: root only; nothing leaves 127.0.0.0/8);
- freeze attempt: ping answer times before, during and after 900 spoofed pings
  under fresh ids next to 300 held items, and the server's CPU time;
- CPU per stranger datagram, by type, in-process at a node holding `--items`
  items, next to a ping from a known contact;
- handshake flood: a contact's message latency while a stranger floods
  spoofed handshake initiations, against no flood, and the CPU one stranger
  initiation costs (bench/handshake_flood.py, run as a child: it has its own
  reactor and pins the flooder to a CPU of its own).

Asserts nothing.

    python3 bench/strangers.py [--items 10000] [--repeat 200] [--flood-seconds 4]
"""

import argparse
import json
import random
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from twisted.internet.task import Clock  # noqa: E402

from kademlia.node import DHTNode  # noqa: E402
from tests.spoofing import Endpoint, RawSender, ServerProcess, can_spoof, store  # noqa: E402
from tests.stranger_helpers import fresh_id_pings, items_near, query, requests  # noqa: E402

PROBE_ID = bytes(range(20))


def _store_items(server, items, addresses):
    clients = [Endpoint((address, 0)) for address in addresses]
    for n, item in enumerate(items):
        store(clients[n % len(clients)], server.address, item, random.Random(n).randbytes(20))
    for client in clients:
        client.close()


def _reflected(raw, server, datagrams, victim_address):
    victim = Endpoint(victim_address)
    for data in datagrams:
        raw.send(data, victim.address, server.address)
    received = sum(len(d) for d in victim.drain())
    victim.close()
    return received, sum(len(d) for d in datagrams)


def amplification(args):
    """Bytes to a spoofed victim per byte spoofed, per request type."""
    server, raw = ServerProcess(), RawSender()
    try:
        item = items_near(1, seed=1, value=b"v" * 990)[0]
        _store_items(server, [item] + items_near(99), [f"127.66.1.{n}" for n in (1, 2, 3)])
        got, sent = _reflected(raw, server, fresh_id_pings(20, seed=11), ("127.66.5.1", 6881))
        rows = [("amplification", "hand-over (20 fresh-id pings, 100 items held)",
                 f"{got / sent:.2f}x ({got} B for {sent} B)", "bound 3x")]
        for n in range(1, 21):  # neighbours, so that `nodes` fields are full
            with_neighbour = Endpoint((f"127.66.3.{n}", 0))
            with_neighbour.request(server.address, b"ping", {b"id": random.Random(100 + n).randbytes(20)})
            with_neighbour.close()
        for n, (name, data) in enumerate(requests(item.target).items()):
            got, sent = _reflected(raw, server, [data], (f"127.66.4.{n + 1}", 6881))
            bound = "byte budget per IP" if name == "get (value)" else "bound 3x"
            rows.append(("amplification", name, f"{got / sent:.2f}x ({got} B for {sent} B)", bound))
        value_get = requests(item.target)["get (value)"]
        started = time.monotonic()
        got, sent = _reflected(raw, server, [value_get] * args.repeat, ("127.66.6.1", 6881))
        seconds = time.monotonic() - started
        rows.append(("amplification", f"{args.repeat} value gets from one victim at once",
                     f"{got} B in {seconds:.1f} s ({got / sent:.2f}x)", "a few KB/s per IP"))
        return rows
    finally:
        raw.close()
        server.stop()


def freeze_attempt(args):
    """Ping answer times around 900 spoofed fresh-id pings next to 300 held items."""
    server, raw = ServerProcess(), RawSender()
    attackers = [f"127.66.1.{n}" for n in (1, 2, 3)]
    victims = [Endpoint((address, 0)) for address in attackers]
    probe = Endpoint(("127.66.9.1", 0))
    try:
        _store_items(server, items_near(300), attackers)
        idle = [probe.ping_time(server.address, PROBE_ID) for _ in range(20)]
        cpu_before = server.cpu_seconds()
        during = []
        for n, ping in enumerate(fresh_id_pings(900)):
            raw.send(ping, victims[n % 3].address, server.address)
            if n % 50 == 49:
                during.append(probe.ping_time(server.address, PROBE_ID, timeout=3))
        after = [probe.ping_time(server.address, PROBE_ID, timeout=3) for _ in range(20)]
        cpu = server.cpu_seconds() - cpu_before
        reflected = sum(len(d) for victim in victims for d in victim.drain(limit=3))
    finally:
        for endpoint in victims + [probe]:
            endpoint.close()
        raw.close()
        server.stop()
    baseline = f"idle: {_ms(max(idle))}"
    sent = sum(len(p) for p in fresh_id_pings(900))
    return [
        ("freeze attempt", "ping answer during (worst of 18)", _ms_or_lost(during), baseline),
        ("freeze attempt", "ping answer after (worst of 20)", _ms_or_lost(after), baseline),
        ("freeze attempt", "server CPU for 900 spoofed pings", f"{cpu:.2f} s", ""),
        ("freeze attempt", "bytes to the 3 victims", f"{reflected} B for {sent} B", "bound 3x"),
    ]


def _ms(seconds):
    return f"{seconds * 1000:.2f} ms"


def _ms_or_lost(times):
    lost = times.count(None)
    worst = max((t for t in times if t is not None), default=None)
    return (f"{_ms(worst)}" if worst is not None else "no answer") + (f", {lost} unanswered" if lost else "")


class _Transport:
    def write(self, data, address):
        pass

    def stopListening(self):
        pass


def cpu_per_datagram(args):
    """CPU per datagram from strangers at a node holding `--items` items."""
    clock = Clock()
    node = DHTNode(clock, node_id=bytes(20))
    node.protocol.makeConnection(_Transport())
    items = items_near(args.items, bits=4, prefix=0xA)
    for n, item in enumerate(items):
        node.store.put(item, None, f"10.9.{n // 100 // 250}.{n // 100 % 250 + 1}")
    known = query(b"ping", {b"id": PROBE_ID})
    node.protocol.datagramReceived(known, ("10.100.0.1", 6881))
    baseline = f"ping from a contact: {_cpu_each(node, [known] * args.repeat, clock, sources=1)}"
    # First, while the table is nearly empty (as a fresh server's is), from 3
    # addresses: each fresh id at a known address replaces the contact there (as a
    # restarted node would), so every one is new to the table.
    rows = [("CPU per datagram", "ping, fresh id next to the items, 3 sources",
             _cpu_each(node, fresh_id_pings(args.repeat, seed=5), clock, sources=3), baseline)]
    rng = random.Random(3)
    for n in range(200):  # then full `nodes` fields for the other requests
        node.routing_table.heard_from(rng.randbytes(20), (f"10.1.{n // 250}.{n % 250 + 1}", 6881))
    kinds = {
        **{name: [data] * args.repeat for name, data in requests(items[0].target).items()},
        "put, bad token": [query(b"put", {b"id": PROBE_ID, b"token": b"x" * 8, b"k": items[0].k,
                                          b"seq": 9, b"v": b"x", b"sig": bytes(64)})] * args.repeat,
    }
    rows += [("CPU per datagram", name, _cpu_each(node, datagrams, clock), baseline)
             for name, datagrams in kinds.items()]
    node.protocol.stop()
    return rows


def _cpu_each(node, datagrams, clock, sources=None):
    """Process CPU per datagram, from `sources` addresses (default: each its own)."""
    started = time.process_time()
    for n, data in enumerate(datagrams):
        n %= sources or len(datagrams)
        node.protocol.datagramReceived(data, (f"10.200.{n // 250 % 250}.{n % 250 + 1}", 6881))
        clock.advance(0.001)
    return f"{(time.process_time() - started) / len(datagrams) * 1e6:.0f} us"


def handshake_flood(args):
    bench = Path(__file__).with_name("handshake_flood.py")
    run = subprocess.run([sys.executable, str(bench), "--seconds", str(args.flood_seconds)],
                         capture_output=True, text=True, check=True, timeout=60 + 4 * args.flood_seconds)
    return [("handshake flood", what, f"{v['figure']:g}", f"{v['baseline']:g}")
            for what, v in json.loads(run.stdout).items()]


MEASUREMENTS = [amplification, freeze_attempt, cpu_per_datagram, handshake_flood]
NEEDS_ROOT = {amplification, freeze_attempt}


def print_table(rows):
    header = ("measurement", "case", "figure", "baseline")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(4)]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000, help="items held, for the CPU figures")
    parser.add_argument("--repeat", type=int, default=200, help="datagrams per CPU figure")
    parser.add_argument("--flood-seconds", type=float, default=4.0, help="of quiet, then of handshake flood")
    args = parser.parse_args(argv)
    rows = []
    for measure in MEASUREMENTS:
        if measure in NEEDS_ROOT and not can_spoof():
            rows.append((measure.__name__, "skipped: spoofing needs raw sockets (root)", "", ""))
            continue
        rows.extend(measure(args))
    print_table(rows)


if __name__ == "__main__":
    main(sys.argv[1:])
