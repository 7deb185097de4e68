"""Foreign DHT nodes for the namespace tests: libtorrent sessions (its Python
bindings) on one address, joined to each other and to the nodes given, as a
stand-in for the public Mainline DHT in a lab. Prints one JSON line with the
sessions' addresses, then runs until stdin closes or the process is stopped.

    python3 tests/netns_libtorrent.py --bind IP [--count N] [--join HOST:PORT ...]
"""

import argparse
import json
import sys

import libtorrent as lt


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bind", required=True)
    parser.add_argument("--count", type=int, default=4)
    parser.add_argument("--join", action="append", default=[])
    args = parser.parse_args()
    sessions = [lt.session({
        "listen_interfaces": f"{args.bind}:0", "outgoing_interfaces": args.bind,
        "enable_dht": True, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
        "dht_bootstrap_nodes": "",
        # Several sessions share this address: keep them in each other's tables.
        "dht_restrict_routing_ips": False, "dht_restrict_search_ips": False,
        "dht_prefer_verified_node_ids": False,
    }) for _ in range(args.count)]
    own = [(args.bind, s.listen_port()) for s in sessions]
    others = [(host, int(port)) for host, port in (a.rsplit(":", 1) for a in args.join)]
    for s in sessions:
        for address in own + others:
            s.add_dht_node(address)
    print(json.dumps({"nodes": [f"{h}:{p}" for h, p in own]}), flush=True)
    sys.stdin.read()  # until the test closes our stdin or stops us


if __name__ == "__main__":
    main()
