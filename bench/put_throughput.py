"""How much one DHT node answers on one core, next to a bare Twisted UDP echo server.

Three kinds of process, all on loopback:
- servers (`--serve dht|echo`): one DHTNode (routing table of `--contacts`
  entries, storage and rate limits opened up so that only CPU limits it), or a
  DatagramProtocol that writes every datagram back; each prints its counters
  and CPU time every 0.1 s;
- load generators (`--load KIND`): build every datagram before the clock starts,
  then keep `--window` queries outstanding against one server (a closed loop:
  the server is never idle and its socket never overflows), or flood it
  open-loop for the drop measurements;
- this orchestrator, which starts them, tells each generator when to go, and
  prints one JSON object.

Puts are distinct BEP 44 mutable items (each its own target, signed by one of
many keys, so each costs the server a signature check and a store), carrying a
valid write token that the generator got for its own IP with a `get` first.
find_node targets are random. Drops: malformed datagrams (decoded and refused)
at an unlimited node, and pings from one IP at a node with the default per-IP
rate limit. Asserts nothing.

    python3 bench/put_throughput.py [--duration 3] [--puts 60000] [--window 128]
"""

import argparse
import json
import random
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nacl.signing import SigningKey  # noqa: E402

from kademlia import bencode, krpc  # noqa: E402
from kademlia.items import MutableItem  # noqa: E402

SERVER_HOST = "127.0.20.1"
LIMITED_HOST = "127.0.20.2"
ECHO_HOST = "127.0.20.3"
GENERATOR_HOSTS = ["127.0.21.%d" % n for n in range(1, 200)]
LOAD_ID = b"L" * 20


# -- servers -------------------------------------------------------------------


def serve(args):
    from twisted.internet import task
    from twisted.internet.protocol import DatagramProtocol

    def main(reactor):
        if args.serve == "echo":
            counters = {"received": 0}

            class Echo(DatagramProtocol):
                def datagramReceived(self, data, address):
                    counters["received"] += 1
                    self.transport.write(data, address)

            port = reactor.listenUDP(0, Echo(), interface=args.host)
            stats = lambda: counters  # noqa: E731
        else:
            from kademlia.node import DHTNode
            from kademlia.settings import DHTSettings

            if args.limited:
                settings = DHTSettings()
            else:
                settings = DHTSettings(max_items=10**7, max_items_per_ip=10**7,
                                       queries_per_ip_per_second=1e9, query_burst_per_ip=10**9)
            node = DHTNode(reactor, settings=settings)
            node.listen(0, args.host)
            rng = random.Random(1)
            for n in range(args.contacts):  # a table as deep as in a large swarm
                node.routing_table.heard_from(rng.randbytes(20), ("127.0.50.%d" % (n % 250 + 1), 6881 + n))
            port = node._listening_port
            stats = lambda: node.stats  # noqa: E731
        print("listening on %s:%d" % (args.host, port.getHost().port), flush=True)

        def report():
            print(json.dumps({"t": time.monotonic(), "cpu": time.process_time(), **stats()}), flush=True)

        loop = task.LoopingCall(report)
        loop.start(0.1)
        return task.Deferred()  # until killed

    task.react(main)


# -- load generators -----------------------------------------------------------


def fetch_token(sock, target):
    sock.settimeout(2)
    sock.sendto(krpc.encode_query(b"tk", b"get", {b"id": LOAD_ID, b"target": b"T" * 20}), target)
    while True:
        reply = bencode.decode(sock.recv(4096))
        if reply.get(b"t") == b"tk":
            return reply[b"r"][b"token"]


def build_puts(token, count, seed):
    rng = random.Random(seed)
    datagrams = []
    key = None
    for n in range(count):
        if n % 100 == 0:
            key = SigningKey(rng.randbytes(32))
            public = bytes(key.verify_key)
        salt = b"%d-%d" % (seed, n)
        item = MutableItem.create(public, lambda m: key.sign(m).signature, b"x" * 200, 1, salt)
        args = {b"id": LOAD_ID, b"token": token, b"k": item.k, b"salt": salt, b"seq": item.seq,
                b"sig": item.sig, b"v": item.v}
        datagrams.append(krpc.encode_query(n.to_bytes(4, "big"), b"put", args))
    return datagrams


def build_find_nodes(count, seed):
    rng = random.Random(seed)
    return [krpc.encode_query(n.to_bytes(4, "big"), b"find_node", {b"id": LOAD_ID, b"target": rng.randbytes(20)})
            for n in range(count)]


def build_malformed(count, seed):
    """Pings cut short by their last byte, one other byte changed: each parses almost to
    the end before the decoder refuses it (the costly kind of garbage)."""
    rng = random.Random(seed)
    valid = krpc.encode_query(b"aa", b"ping", {b"id": LOAD_ID})[:-1]
    datagrams = []
    for _ in range(count):
        data = bytearray(valid)
        data[rng.randrange(1, len(data))] = rng.choice(b"x:0e")
        datagrams.append(bytes(data))
    return datagrams


def closed_loop(sock, target, datagrams, window, duration, cyclic):
    """Keep `window` queries outstanding; returns (answered, errors, start, end)."""
    sock.settimeout(0.2)
    answered = errors = sent = outstanding = 0
    total = len(datagrams)
    start = time.monotonic()
    deadline = start + duration
    last = start
    while True:
        while outstanding < window and (cyclic or sent < total):
            sock.sendto(datagrams[sent % total], target)
            sent += 1
            outstanding += 1
        if outstanding == 0:
            break
        try:
            reply = sock.recv(4096)
        except socket.timeout:
            outstanding = 0  # lost on the way: refill the window
            continue
        outstanding -= 1
        answered += 1
        if b"1:y1:e" in reply:
            errors += 1
        last = time.monotonic()
        if last >= deadline:
            break
    return answered, errors, start, last


def paced_flood(sock, clocks, target, datagrams, batch, duration):
    """Send `batch` datagrams that get no answer, then a ping from one of the `clocks`
    sockets, and wait for its answer before the next batch. The server reads its
    socket in order, so it is never idle, and nothing overflows on the way to it
    (an open-loop flood mostly measures the kernel dropping datagrams).
    Returns (datagrams sent, start, end)."""
    pings = [krpc.encode_query(b"c%d" % n, b"ping", {b"id": LOAD_ID}) for n in range(len(clocks))]
    for clock in clocks:
        clock.settimeout(0.2)
    sent = 0
    total = len(datagrams)
    start = time.monotonic()
    deadline = start + duration
    turn = 0
    while time.monotonic() < deadline:
        for _ in range(batch):
            sock.sendto(datagrams[sent % total], target)
            sent += 1
        turn = (turn + 1) % len(clocks)
        clocks[turn].sendto(pings[turn], target)
        try:
            clocks[turn].recv(4096)
        except socket.timeout:
            pass
    return sent, start, time.monotonic()


def load(args):
    host, port = args.target.rsplit(":", 1)
    target = (host, int(port))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind((args.source, 0))
    if args.load == "put":
        token = bytes(8) if args.echo else fetch_token(sock, target)  # an echo server issues none
        datagrams = build_puts(token, args.count, args.seed)
    elif args.load == "find_node":
        datagrams = build_find_nodes(args.count, args.seed)
    elif args.load == "malformed":
        datagrams = build_malformed(args.count, args.seed)
    else:
        datagrams = [krpc.encode_query(b"p%d" % n, b"ping", {b"id": LOAD_ID}) for n in range(1000)]
    print("ready", flush=True)
    sys.stdin.readline()  # "go"
    if args.load in ("malformed", "ping"):
        # Pings that pace the flood come from other addresses than the flood (which
        # may be rate-limited), each well under the per-IP limit.
        clocks = []
        for host in GENERATOR_HOSTS[100:140]:
            clock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            clock.bind((host, 0))
            clocks.append(clock)
        sent, start, end = paced_flood(sock, clocks, target, datagrams, args.batch, args.duration)
        result = {"sent": sent, "start": start, "end": end}
    else:
        answered, errors, start, end = closed_loop(sock, target, datagrams, args.window, args.duration,
                                                   cyclic=args.cyclic)
        result = {"answered": answered, "errors": errors, "start": start, "end": end}
    print(json.dumps(result), flush=True)


# -- orchestration -------------------------------------------------------------


class Child:
    """A child process of this script, its stdout lines collected by a thread."""

    def __init__(self, *argv):
        self.process = subprocess.Popen(
            [sys.executable, __file__, *argv], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.lines = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.append(line.strip())

    def wait_for(self, prefix, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines:
                if line.startswith(prefix):
                    return line
            if self.process.poll() is not None:
                break
            time.sleep(0.01)
        raise RuntimeError(f"child {self.process.args[2:]} never said {prefix!r}")

    def address(self):
        return self.wait_for("listening on").split()[-1]

    def stats(self):
        return [json.loads(line) for line in self.lines if line.startswith("{")]

    def stop(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


def run_generator(kind, target, source, args, **extra):
    argv = ["--load", kind, "--target", target, "--source", source, "--duration", str(args.duration),
            "--window", str(args.window), "--count", str(extra.get("count", args.puts)),
            "--seed", str(extra.get("seed", 1)), "--batch", str(args.batch)]
    for flag in ("cyclic", "echo"):
        if extra.get(flag):
            argv.append("--" + flag)
    generator = Child(*argv)
    try:
        generator.wait_for("ready", timeout=600)
        generator.process.stdin.write("go\n")
        generator.process.stdin.flush()
        generator.process.wait(timeout=args.duration + 60)
        time.sleep(0.05)
        return json.loads(generator.lines[-1])
    finally:
        generator.stop()


def server_rate(server, counter, start, end):
    """Per second increase of a server counter between the report lines nearest to [start, end],
    and the server's CPU use (1.0 = one core busy) over the same span."""
    time.sleep(0.25)
    lines = [s for s in server.stats() if start <= s["t"] <= end]
    if len(lines) < 2:
        return None, None
    first, last = lines[0], lines[-1]
    span = last["t"] - first["t"]
    return (last[counter] - first[counter]) / span, (last["cpu"] - first["cpu"]) / span


def orchestrate(args):
    dht = Child("--serve", "dht", "--host", SERVER_HOST, "--contacts", str(args.contacts))
    limited = Child("--serve", "dht", "--host", LIMITED_HOST, "--limited", "--contacts", str(args.contacts))
    echo = Child("--serve", "echo", "--host", ECHO_HOST)
    try:
        targets = {"dht": dht.address(), "limited": limited.address(), "echo": echo.address()}
        report = {"benchmark": "put_throughput", "duration_s": args.duration, "window": args.window,
                  "routing_table": args.contacts}
        rates = {}
        for name, target, server in (("dht", targets["dht"], dht), ("echo", targets["echo"], echo)):
            # Fresh items for each server: seeds differ, so no put repeats an earlier one.
            put = run_generator("put", target, GENERATOR_HOSTS[0 if name == "dht" else 1], args,
                                seed=7 if name == "dht" else 8, echo=name == "echo")
            _, put_cpu = server_rate(server, "received", put["start"], put["end"])
            find = run_generator("find_node", target, GENERATOR_HOSTS[2], args, count=50_000, cyclic=True)
            _, find_cpu = server_rate(server, "received", find["start"], find["end"])
            rates[name] = {
                "puts_per_s": round(put["answered"] / (put["end"] - put["start"])),
                "put_errors": put["errors"],
                "puts_server_cpu": put_cpu and round(put_cpu, 2),
                "find_node_per_s": round(find["answered"] / (find["end"] - find["start"])),
                "find_node_server_cpu": find_cpu and round(find_cpu, 2),
            }
        rates["dht"]["stored_items"] = dht.stats()[-1]["items"]
        report["dht_node"] = rates["dht"]
        report["udp_echo"] = rates["echo"]
        report["ratio_dht_to_echo"] = {
            "puts": round(rates["dht"]["puts_per_s"] / rates["echo"]["puts_per_s"], 3),
            "find_node": round(rates["dht"]["find_node_per_s"] / rates["echo"]["find_node_per_s"], 3),
        }
        for kind, server, counter in (("malformed", dht, "malformed"), ("ping", limited, "rate_limited")):
            flood = run_generator(kind, targets["dht" if kind == "malformed" else "limited"],
                                  GENERATOR_HOSTS[3], args, count=10_000)
            dropped, cpu = server_rate(server, counter, flood["start"], flood["end"])
            report[f"{counter}_dropped_per_s"] = dropped and round(dropped)
            report[f"{counter}_server_cpu"] = cpu and round(cpu, 2)
            report[f"{counter}_offered_per_s"] = round(flood["sent"] / (flood["end"] - flood["start"]))
        print(json.dumps(report, indent=2))
    finally:
        for child in (dht, limited, echo):
            child.stop()


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per measurement")
    parser.add_argument("--puts", type=int, default=60_000, help="distinct signed puts to pre-build")
    parser.add_argument("--window", type=int, default=128, help="queries kept outstanding")
    parser.add_argument("--contacts", type=int, default=150, help="routing table size of the node measured")
    parser.add_argument("--batch", type=int, default=64, help="flood datagrams per pacing ping")
    # Internal: the child processes.
    parser.add_argument("--serve", choices=["dht", "echo"], help=argparse.SUPPRESS)
    parser.add_argument("--host", help=argparse.SUPPRESS)
    parser.add_argument("--limited", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--load", choices=["put", "find_node", "malformed", "ping"], help=argparse.SUPPRESS)
    parser.add_argument("--target", help=argparse.SUPPRESS)
    parser.add_argument("--source", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--cyclic", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--echo", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args)
    elif args.load:
        load(args)
    else:
        orchestrate(args)


if __name__ == "__main__":
    main(sys.argv[1:])
