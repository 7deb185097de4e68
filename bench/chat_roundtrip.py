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
import time
from pathlib import Path

from nacl.signing import SigningKey
from twisted.internet import defer, protocol, task

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kadchat.history import History  # noqa: E402
from kadchat.messaging import ChatEndpoint  # noqa: E402


class _UDP(protocol.DatagramProtocol):
    endpoint = None

    def datagramReceived(self, data, addr):
        self.endpoint.datagram_received(data, addr)


class _Deliveries:
    """Fires a Deferred per message id when it is delivered."""

    def __init__(self):
        self.waiting = {}

    def expect(self, message_id):
        d = self.waiting[message_id] = defer.Deferred()
        return d

    def message_state(self, message_id, state):
        if state == "delivered" and message_id in self.waiting:
            self.waiting.pop(message_id).callback(time.perf_counter())

    def message_received(self, peer_key, message):
        pass


def _endpoint(reactor, identity, contact, history_path):
    udp = _UDP()
    history = History(history_path)
    udp.endpoint = ChatEndpoint(reactor, lambda data, addr: udp.transport.write(data, addr),
                                identity, {contact}.__contains__, history)
    port = reactor.listenUDP(0, udp, interface="127.0.0.1")
    udp.endpoint.start()
    return udp.endpoint, port, history


def _percentile(sorted_values, fraction):
    return sorted_values[min(len(sorted_values) - 1, int(fraction * len(sorted_values)))]


@defer.inlineCallbacks
def main(reactor, *argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--round-trips", type=int, default=300)
    parser.add_argument("--burst", type=int, default=2000)
    parser.add_argument("--size", type=int, default=100, help="characters per message")
    parser.add_argument("--memory", action="store_true", help="in-memory history (no fsync)")
    args = parser.parse_args(argv)
    alice_key, bob_key = SigningKey.generate(), SigningKey.generate()
    with tempfile.TemporaryDirectory() as tmp:
        paths = [":memory:"] * 2 if args.memory else [os.path.join(tmp, n) for n in ("a.sqlite3", "b.sqlite3")]
        alice, alice_port, alice_history = _endpoint(reactor, alice_key, bytes(bob_key.verify_key), paths[0])
        bob, bob_port, bob_history = _endpoint(reactor, bob_key, bytes(alice_key.verify_key), paths[1])
        deliveries = _Deliveries()
        alice.subscribe(deliveries)
        bob_addr = [("127.0.0.1", bob_port.getHost().port)]
        text = "x" * args.size

        started = time.perf_counter()
        yield deliveries.expect(alice.send_message(bytes(bob_key.verify_key), bob_addr, text))
        first_with_handshake = time.perf_counter() - started

        round_trips = []
        for _ in range(args.round_trips):
            started = time.perf_counter()
            done = deliveries.expect(alice.send_message(bytes(bob_key.verify_key), bob_addr, text))
            round_trips.append((yield done) - started)
        round_trips.sort()

        started = time.perf_counter()
        burst = [deliveries.expect(alice.send_message(bytes(bob_key.verify_key), bob_addr, text))
                 for _ in range(args.burst)]
        yield defer.gatherResults(burst)
        burst_seconds = time.perf_counter() - started

        for endpoint, port, history in ((alice, alice_port, alice_history), (bob, bob_port, bob_history)):
            yield endpoint.stop()
            yield port.stopListening()
            history.close()
    print(json.dumps({
        "history": "memory" if args.memory else "sqlite file, WAL, synchronous=FULL",
        "message_chars": args.size,
        "first_message_with_handshake_ms": round(first_with_handshake * 1e3, 3),
        "round_trips": args.round_trips,
        "round_trip_p50_ms": round(_percentile(round_trips, 0.50) * 1e3, 3),
        "round_trip_p95_ms": round(_percentile(round_trips, 0.95) * 1e3, 3),
        "burst_messages": args.burst,
        "burst_messages_per_second": round(args.burst / burst_seconds, 1),
    }, indent=2))


if __name__ == "__main__":
    task.react(main, sys.argv[1:])
