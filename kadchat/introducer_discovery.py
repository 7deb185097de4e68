"""Introducers without a server of our own (Mainline mode).

Publicly reachable kadchat nodes that have opted in (every `dedicated_server.py`,
clients started with `--introducer`) `announce_peer` themselves under
`INFO_HASH`, SHA-1 of a fixed string, as BitTorrent peers announce a torrent;
any Mainline node stores such announces for about half an hour. A client
behind a NAT looks them up with `get_peers` and keeps registrations with 2-3
of them (kadchat.nat.traversal): they pass on hole-punching introductions and,
as a last resort, relay. An announce proves nothing, so an introducer that
never answers our registrations is replaced at the next search.
"""

import hashlib
import random

from twisted.internet import defer
from twisted.logger import Logger

from kademlia import krpc
from kademlia.timers import Loop, cancel

INFO_HASH = hashlib.sha1(b"kadchat introducers v1").digest()
WANTED = 3  # registrations a client keeps (reachability.INTRODUCERS_KEPT)
EMPTY_INTERVAL = 10.0  # look again this soon while we have none: behind a NAT, nobody can reach us
SEARCH_INTERVAL = 60.0  # this often while we have fewer than WANTED that answer
SETTLED_INTERVAL = 900.0  # and this often once we have them
ANNOUNCE_INTERVAL = 900.0  # libtorrent forgets announced peers after 30 minutes


def announced_peers(candidates, limit=100):
    """The (ip, port) peers in get_peers answers (BEP 5 `values`), nearest answer first."""
    found = []
    for candidate in candidates:
        values = candidate.values.get(b"values") if candidate.values else None
        if not isinstance(values, list):
            continue
        for packed in values:
            if isinstance(packed, bytes) and len(packed) == 6:
                address = krpc.decode_address(packed)
                if krpc.is_routable(address) and address not in found:
                    found.append(address)
        if len(found) >= limit:
            break
    return found[:limit]


class IntroducerSearch:
    """Keeps `traversal`'s introducers filled with announced kadchat nodes.

    `node` has `get_peers(info_hash)`; `traversal` has `start(introducers)`,
    `introducers` and `observed` (the introducers that answered us);
    `own_address()` is left out of what is found."""

    log = Logger()

    def __init__(self, clock, node, traversal, own_address=lambda: None, wanted=WANTED, rng=None,
                 info_hash=INFO_HASH):
        self._node = node
        self._traversal = traversal
        self._own_address = own_address
        self.wanted = wanted
        self._rng = rng or random.SystemRandom()
        self._info_hash = info_hash
        self._clock = clock
        self._next = None  # the next search, timed by what the last one left us
        self._running = False

    def start(self):
        """Search now, and again as long as we run; fires when the first search ends."""
        self._running = True
        return self.search()

    def stop(self):
        self._running = False
        self._next = cancel(self._next)
        return defer.succeed(None)

    def _again(self, chosen, answering, found):
        if not self._running:
            return
        if not chosen:
            delay = EMPTY_INTERVAL
        elif answering and len(answering) >= min(self.wanted, found):
            delay = SETTLED_INTERVAL
        else:
            delay = SEARCH_INTERVAL
        cancel(self._next)
        self._next = self._clock.callLater(delay, self.search)

    @defer.inlineCallbacks
    def search(self):
        """One get_peers search; fires with the introducers in use afterwards."""
        try:
            answered = yield self._node.get_peers(self._info_hash)
        except Exception as e:  # our node stopping, or refused queries: try again later
            self.log.info("introducer search failed: {error}", error=e)
            self._again(self._traversal.introducers, [], 0)
            return self._traversal.introducers
        own = self._own_address()
        found = [a for a in announced_peers(answered) if a != own]
        answering = [a for a in self._traversal.introducers if a in self._traversal.observed]
        silent = [a for a in self._traversal.introducers if a not in answering]
        fresh = [a for a in found if a not in answering and a not in silent]
        self._rng.shuffle(fresh)  # spread clients over the introducers there are
        # Those that never answered us come last: tried again only if nobody else is announced.
        chosen = (answering + fresh + [a for a in silent if a in found])[: self.wanted]
        if chosen != self._traversal.introducers:
            self.log.info("introducers: {n} of {found} announced", n=len(chosen), found=len(found))
            self._traversal.start(chosen)
        self._again(chosen, answering, len(found))
        return chosen


class Announcer:
    """Announces this node under `INFO_HASH` every `interval` while `eligible()`
    (publicly reachable; a node behind a NAT would only attract registrations it
    cannot serve), looking every CHECK_INTERVAL whether it has become so.
    `implied_port` makes the storing nodes take the port our datagrams come from."""

    log = Logger()
    CHECK_INTERVAL = 20.0

    def __init__(self, clock, node, eligible=lambda: True, interval=ANNOUNCE_INTERVAL, info_hash=INFO_HASH):
        self._clock = clock
        self._node = node
        self._eligible = eligible
        self.interval = interval
        self._info_hash = info_hash
        self._loop = Loop(clock, self.CHECK_INTERVAL, self._tick)
        self._last = None  # when the latest announce went out
        self.stored = 0  # nodes that accepted our latest announce

    def start(self):
        self._loop.start(now=True)

    def stop(self):
        return self._loop.stop()

    def _tick(self):
        if self._last is None or self._clock.seconds() - self._last >= self.interval:
            return self.announce()

    @defer.inlineCallbacks
    def announce(self):
        """Fires with how many nodes accepted the announce (0 when not eligible)."""
        if not self._eligible():
            return 0
        self._last = self._clock.seconds()
        try:
            answered = yield self._node.get_peers(self._info_hash)
        except Exception as e:
            self.log.info("announce failed: {error}", error=e)
            return 0
        port = self._node.address[1]
        queries = [
            self._node.query_contact(c.node_id, c.address, b"announce_peer", {
                b"info_hash": self._info_hash, b"port": port, b"implied_port": 1, b"token": c.values[b"token"]})
            for c in answered if isinstance(c.values.get(b"token"), bytes)
        ]
        results = yield defer.DeferredList(queries, consumeErrors=True)
        self.stored = sum(1 for ok, _ in results if ok)
        self.log.info("announced as introducer to {n} nodes", n=self.stored)
        return self.stored
