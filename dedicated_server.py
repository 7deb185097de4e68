#!/usr/bin/env python3
"""An always-on kadchat DHT node: bootstraps the swarm and serves as introducer
(and, for clients that cannot punch through their NATs, as relay).

    dedicated_server.py -p PORT [--host HOST] [-l LOGFILE] [-b HOST:PORT ...]
                        [--state FILE] [--status-interval SECONDS] [--mainline]

It announces itself as introducer under kadchat.introducer_discovery.INFO_HASH,
so clients on the public BitTorrent DHT (--mainline) find it with get_peers.
"""

from kadchat import interrupts  # first: Ctrl-C while importing exits quietly

import sys
from dataclasses import replace

from twisted.internet import defer, error, task
from twisted.logger import Logger

from config import PARSERS
from kadchat import network_mode
from kadchat.addrvote import AddressVotes, IdRenewal
from kadchat.cli import OneLineParser, flag_type, parse_address, run_main, start_logging
from kadchat.deaddrop import DROP_TTL
from kadchat.dispatch import DatagramDispatch
from kadchat.errors import UserError
from kadchat.introducer_discovery import Announcer
from kadchat.nat.introducer import Introducer
from kademlia.node import DHTNode
from kademlia.settings import DHTSettings

log = Logger(namespace="dedicated_server")


def parse_args(argv):
    parser = OneLineParser(prog="dedicated_server.py", description="Run an always-on kadchat DHT node.")
    parser.add_argument("-p", "--port", type=flag_type(PARSERS["port"]), required=True, help="UDP port to listen on")
    parser.add_argument("--host", default="0.0.0.0", help="address to bind (default: all)")
    parser.add_argument("-l", "--log", metavar="LOGFILE", help="log file (default: stderr)")
    parser.add_argument(
        "-b", "--bootstrap", metavar="HOST:PORT", action="append", default=[],
        help="another node to join through (repeatable)",
    )
    parser.add_argument(
        "--state", metavar="FILE",
        help="where to keep the node id and routing table across restarts",
    )
    parser.add_argument("--status-interval", type=float, default=60.0, metavar="SECONDS")
    parser.add_argument("--mainline", action="store_true",
                        help="join the public BitTorrent DHT through its well-known routers, as a good citizen")
    return parser.parse_args(argv)


class StatusReporter:
    """Logs one status line per interval: table size, items, queries/s, drops, NAT help given."""

    def __init__(self, clock, node, introducer):
        self._clock = clock
        self._node = node
        self._introducer = introducer
        self._last = (clock.seconds(), 0)

    def report(self):
        stats = self._node.stats
        now = self._clock.seconds()
        then, queries_then = self._last
        rate = (stats["queries"] - queries_then) / max(now - then, 1e-9)
        self._last = (now, stats["queries"])
        nat = self._introducer.stats
        log.info(
            "status: routing table {table}, items {items}, queries/s {rate:.1f}, "
            "dropped malformed {malformed}, rate-limited {limited}, trimmed answers {trimmed}, "
            "withheld values {withheld}; "
            "registered {registered}, introduced {introduced}, relayed {relayed} bytes, refused {refused}, "
            "evicted {evicted}, bad proofs {bad_proof}",
            table=stats["routing_table"], items=stats["items"], rate=rate,
            malformed=stats["malformed"], limited=stats["rate_limited"],
            trimmed=stats["trimmed_answers"], withheld=stats["withheld_values"],
            registered=self._introducer.registered, introduced=nat["introduced"],
            relayed=nat["relayed_bytes"], refused=nat["refused"], evicted=nat["evicted"],
            bad_proof=nat["bad_proof"],
        )


@defer.inlineCallbacks
def main(reactor, argv):
    args = parse_args(argv)
    peers = [parse_address(a) for a in args.bootstrap]
    # Dead drops ask for two days (kadchat.deaddrop); everything else keeps the 600 s default.
    settings = DHTSettings(max_ttl=DROP_TTL)
    if args.mainline:  # BEP 42 ids checked, queries paced per IP (kadchat.network_mode)
        settings = replace(settings, node_id_check="public", pace_interval=network_mode.PACE_INTERVAL)
        peers += network_mode.routers()
    node = DHTNode(reactor, settings=settings, state_path=args.state)
    if args.mainline:  # an id that fits our address, as BEP 42 nodes want
        votes = AddressVotes(reactor.seconds)
        node.add_response_observer(votes.add)
        node.add_response_observer(IdRenewal(node, votes, from_first=True))
    try:
        host, port = node.listen(args.port, args.host)
    except error.CannotListenError as e:
        raise UserError(f"cannot listen on UDP {args.host}:{args.port}: {e.socketError.strerror}") from None
    # Only now: a log started earlier would add its shutdown lines to a one-line error.
    start_logging(args.log)
    log.info("kadchat DHT node {id} listening on {host}:{port}", id=node.node_id.hex(), host=host, port=port)
    print(f"listening on {host}:{port}", flush=True)
    introducer = Introducer(reactor, node.send_datagram)
    node.set_datagram_handler(DatagramDispatch(introducer))  # NAT requests; chat is not for a server
    reactor.addSystemEventTrigger("before", "shutdown", node.stop)
    reporter = task.LoopingCall(StatusReporter(reactor, node, introducer).report)
    reporter.clock = reactor
    reporter.start(args.status_interval, now=False)
    size = yield node.bootstrap(peers)  # also rejoins through the saved routing table
    log.info("joined: {size} contacts in the routing table", size=size)
    announcer = Announcer(reactor, node)  # a server is reachable by definition: always eligible
    announcer.start()
    reactor.addSystemEventTrigger("before", "shutdown", announcer.stop)
    yield defer.Deferred()  # serve until SIGINT/SIGTERM stops the reactor


if __name__ == "__main__":
    interrupts.hand_over()
    task.react(run_main, (main, sys.argv[1:]))
