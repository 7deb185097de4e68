"""What one Mainline-mode client sends to each foreign node, with and without
pacing, on a loopback stand-in for Mainline (16 libtorrent sessions,
tests/mainline_standin.py): bootstrap, then `--items` puts to the 20 closest
and as many gets, all at once (a client starting with presence records and a
backlog of dead drops). Prints JSON: per run the busiest second and busiest
10 s any session saw from the client (libtorrent bans an IP sending 50 packets
within 10 s), how many gets found their item, and the wall time.

    python3 bench/mainline_pacing.py [--items 20] [--sessions 16]
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from nacl.signing import SigningKey  # noqa: E402
from twisted.internet import defer, reactor, task  # noqa: E402

from kadchat import network_mode  # noqa: E402
from kademlia.items import MutableItem  # noqa: E402
from kademlia.node import DHTNode  # noqa: E402
from kademlia.settings import DHTSettings  # noqa: E402
from tests.mainline_standin import MainlineStandIn  # noqa: E402


def busiest(times_by_session, window):
    worst = 0
    for times in times_by_session:
        times, start = sorted(times), 0
        for end, t in enumerate(times):
            while t - times[start] >= window:
                start += 1
            worst = max(worst, end - start + 1)
    return worst


@defer.inlineCallbacks
def one_run(standin, host, pace, items):
    settings = DHTSettings(node_id_check="public", pace_interval=pace)
    node = DHTNode(reactor, settings=settings)
    node.listen(0, host)
    began = time.monotonic()
    yield node.bootstrap(standin.addresses[:4])
    keys = [SigningKey.generate() for _ in range(items)]
    made = [MutableItem.create(bytes(k.verify_key), lambda m, k=k: k.sign(m).signature, b"x" * 900, 1)
            for k in keys]
    yield defer.DeferredList([node.put(item, width=network_mode.PUT_WIDTH) for item in made], consumeErrors=True)
    got = yield defer.DeferredList([node.get(item.target) for item in made], consumeErrors=True)
    found = sum(1 for ok, item in got if ok and item is not None)
    took = time.monotonic() - began
    yield node.stop()
    yield task.deferLater(reactor, 1.0, lambda: None)  # the last packets reach the alerts
    times = [t for (_, source), t in standin.received.items() if source == host]
    return {"pace_interval": pace, "busiest_second": busiest(times, 1.0), "busiest_10s": busiest(times, 10.0),
            "packets": sum(map(len, times)), "gets_found": found, "of": items, "seconds": round(took, 1)}


@defer.inlineCallbacks
def main(args):
    standin = MainlineStandIn(args.sessions)
    yield task.deferLater(reactor, 3.0, lambda: None)  # the sessions find each other
    runs = []
    # A fresh source address per run: a ban earned by one run must not spoil the other.
    for n, pace in enumerate((0.0, network_mode.PACE_INTERVAL)):
        runs.append((yield one_run(standin, f"127.0.43.{200 + n}", pace, args.items)))
    standin.stop()
    print(json.dumps({"sessions": args.sessions, "items": args.items, "load": os.getloadavg()[0],
                      "runs": runs}, indent=1))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--sessions", type=int, default=16)
    parsed = parser.parse_args()
    task.react(lambda _reactor: main(parsed))
