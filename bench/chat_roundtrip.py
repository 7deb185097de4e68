"""Chat message round trip and throughput between two endpoints on real loopback UDP.

Two ChatEndpoints in one process, each on its own UDP socket on 127.0.0.1,
each with its own history file (WAL, synchronous=FULL: every acknowledged
message is on disk, so this includes the fsyncs). Measures send -> delivered
(the peer stored it and acknowledged) one message at a time, then the rate
with many messages outstanding. Prints one JSON object.

    python3 bench/chat_roundtrip.py [--round-trips N] [--burst N] [--size BYTES] [--memory]
"""

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from twisted.internet import defer, task

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.chat_loopback import Contacts, Deliveries, percentile  # noqa: E402


@defer.inlineCallbacks
def main(reactor, *argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--round-trips", type=int, default=300)
    parser.add_argument("--burst", type=int, default=2000)
    parser.add_argument("--size", type=int, default=100, help="characters per message")
    parser.add_argument("--memory", action="store_true", help="in-memory history (no fsync)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        paths = [":memory:"] * 2 if args.memory else [os.path.join(tmp, n) for n in ("a.sqlite3", "b.sqlite3")]
        contacts = Contacts.open(reactor, paths)
        deliveries = Deliveries(reactor)
        contacts.alice.endpoint.subscribe(deliveries)
        text = "x" * args.size

        def send():
            message_id = contacts.alice.endpoint.send_message(contacts.bob_key, [contacts.bob.addr], text)
            return deliveries.expect(message_id)

        started = reactor.seconds()
        yield send()
        first_with_handshake = reactor.seconds() - started

        round_trips = []
        for _ in range(args.round_trips):
            started = reactor.seconds()
            round_trips.append((yield send()) - started)

        started = reactor.seconds()
        yield defer.gatherResults([send() for _ in range(args.burst)])
        burst_seconds = reactor.seconds() - started
        yield contacts.close()
    print(json.dumps({
        "history": "memory" if args.memory else "sqlite file, WAL, synchronous=FULL",
        "message_chars": args.size,
        "first_message_with_handshake_ms": round(first_with_handshake * 1e3, 3),
        "round_trips": args.round_trips,
        "round_trip_p50_ms": round(percentile(round_trips, 0.50) * 1e3, 3),
        "round_trip_p95_ms": round(percentile(round_trips, 0.95) * 1e3, 3),
        "burst_messages": args.burst,
        "burst_messages_per_second": round(args.burst / burst_seconds, 1),
    }, indent=2))


if __name__ == "__main__":
    task.react(main, sys.argv[1:])
