"""DHTNode: the facade the rest of kadchat uses (listen, bootstrap, get, put, stop).

The server side (`server.py`) answers BEP 5 `ping`, `find_node`, `get_peers`
(with `nodes` only) and BEP 44 `get`/`put`; unknown methods get error 204. The
client side runs iterative lookups (`lookup.py`), then `get` keeps the newest
item found and pushes it to the closest nodes that answered with an older one
or none (read-repair). Items travel with their remaining TTL, never more.
"""

import os

from twisted.internet import defer
from twisted.logger import Logger

from kademlia import krpc, nodeid, statefile
from kademlia.handover import Handover
from kademlia.items import ItemError, MutableItem, VerifiedSignatures
from kademlia.lookup import Lookup
from kademlia.pacing import QueryPacer
from kademlia.peers import PeerHandlers, PeerStore
from kademlia.protocol import KRPCProtocol, QueryTimeout
from kademlia.ratelimit import PerIPRateLimiter
from kademlia.reflection import ReflectionGuard, padded_size
from kademlia.routing import RoutingTable
from kademlia.rtt import TimeoutPolicy
from kademlia.server import QueryServer, item_values
from kademlia.settings import DHTSettings
from kademlia.storage import ItemStore
from kademlia.timers import Loop
from kademlia.tokens import TokenManager


class DHTNode:
    """`reactor` is the clock of every timer and, for `listen`, the socket factory.

    `query_handlers` maps a KRPC method to `fn(args, address) -> values`: the
    public seam for nodes that answer differently (tests' hostile nodes). A
    handler returning None sends no answer at all.

    `keep_id=False` (clients): a new id at every start, never saved, and
    `renew_id()` when our address changes: a stable id would link everything
    we do in the DHT, across epochs and restarts (issue 12, 3). Servers keep
    theirs in `state_path`."""

    log = Logger()

    def __init__(self, reactor, node_id=None, settings=None, state_path=None, keep_id=True):
        self.clock = reactor
        self.settings = s = settings or DHTSettings()
        self.state_path = state_path
        self.keep_id = keep_id
        saved = statefile.load(state_path)
        self.node_id = node_id or (saved.get("node_id") if keep_id else None) or os.urandom(krpc.ID_LENGTH)
        self._saved_contacts = saved.get("contacts", [])
        self.address = None
        now = reactor.seconds
        self.routing_table = RoutingTable(self.node_id, now, k=s.k)
        self.timeouts = TimeoutPolicy(floor=s.stall_floor, ceiling=s.query_timeout)
        self.store = ItemStore(now, s.default_ttl, s.max_ttl, s.max_items, s.max_items_per_ip)
        self.signatures = VerifiedSignatures()  # items our gets found valid lately
        self.tokens = TokenManager(now, s.token_rotation)
        self._accept_id = None if s.node_id_check == "off" else nodeid.acceptor(s.node_id_check)
        self.reflection = ReflectionGuard(
            now, self.tokens.is_valid, s.reflection_factor,
            s.unproven_value_bytes_per_second, s.unproven_value_burst,
        )
        self.protocol = KRPCProtocol(
            reactor, self,
            PerIPRateLimiter(now, s.queries_per_ip_per_second, s.query_burst_per_ip),
            PerIPRateLimiter(now, s.datagrams_per_ip_per_second, s.datagram_burst_per_ip),
            self.reflection, s.max_pending_queries,
            QueryPacer(reactor, s.pace_interval) if s.pace_interval > 0 else None,
        )
        self.query_handlers = QueryServer(self.routing_table, self.store, self.tokens).handlers()
        self.peers = PeerStore(now)  # announce_peer (kadchat introducers announce themselves)
        self.query_handlers.update(PeerHandlers(self.peers, self.tokens, self.query_handlers[b"get_peers"]).handlers())
        self.handover = Handover(self, reactor, s)
        room = padded_size(s.k, s.reflection_factor)
        self._answer_room = {b"find_node": room, b"get_peers": room, b"get": room}
        self._observers = []
        self._maintenance = Loop(reactor, s.maintenance_interval, self._maintain)
        self._republishing = Loop(reactor, s.republish_interval, self.republish)

    # -- life cycle ----------------------------------------------------------

    def listen(self, port, interface="127.0.0.1"):
        """Bind a real UDP socket; raises twisted's CannotListenError if busy."""
        listening = self.clock.listenUDP(port, self.protocol, interface=interface)
        return self._started((interface, listening.getHost().port))

    def attach(self, network, address):
        """Join an in-memory `kademlia.sim.SimNetwork` instead of a real socket."""
        network.listen(address, self.protocol)
        return self._started(address)

    def _started(self, address):
        self.address = address
        self._maintenance.start()
        self._republishing.start()
        return address

    def stop(self):
        """Save the routing table, stop timers, fail pending queries, close the socket."""
        self._maintenance.stop()
        self._republishing.stop()
        self.handover.stop()
        if self.state_path:
            statefile.save(self.state_path, self.node_id if self.keep_id else None, self.routing_table.contacts())
        return self.protocol.stop()

    def renew_id(self, external_ip=None):
        """Take a new random id (BEP 42's for a public IPv4 `external_ip`), keeping the contacts."""
        if external_ip is not None and ":" not in external_ip and not nodeid.is_exempt(external_ip):
            self.node_id = nodeid.node_id_for(external_ip, os.urandom)
        else:
            self.node_id = os.urandom(krpc.ID_LENGTH)
        self.routing_table.rekey(self.node_id)
        self.log.info("new node id {id}", id=self.node_id.hex()[:8])

    # -- non-KRPC datagrams and observers -------------------------------------

    def set_datagram_handler(self, handler, exempt=None):
        """`handler(data, address)` takes the non-KRPC datagrams; those `exempt(data, address)`
        vouches for skip their per-IP budget."""
        self.protocol.datagram_handler = handler
        self.protocol.datagram_exempt = exempt

    def send_datagram(self, data, address):
        self.protocol.send_datagram(data, address)

    def add_response_observer(self, observer):
        """observer(responder_address, responder_id, our_address_as_seen) per response."""
        self._observers.append(observer)

    @property
    def stats(self):
        return {
            "routing_table": len(self.routing_table),
            "items": len(self.store),
            "refused_puts": self.store.refused,
            "trimmed_answers": self.reflection.trimmed,
            "withheld_values": self.reflection.withheld,
            **self.handover.stats,
            **self.protocol.stats.as_dict(),
        }

    # -- client side: single queries ----------------------------------------

    def stall_timeout(self, node_id):
        contact = self.routing_table.get(node_id)
        timeout = self.timeouts.timeout_for(contact.rtt, contact.failures) if contact \
            else self.timeouts.timeout_for(None)
        pacer = self.protocol.pacer
        if pacer is not None:  # a paced query waits before it leaves: not a stall
            timeout += pacer.wait(contact.address[0]) if contact else pacer.longest_wait()
        return timeout

    def query_contact(self, node_id, address, method, args):
        """One KRPC query; success and failure both update the routing table."""
        args = {**args, b"id": self.node_id}
        started = self.clock.seconds()
        d = self.protocol.query(address, method, args, self.settings.query_timeout,
                                self._answer_room.get(method, 0))

        def answered(response):
            self._heard_from(response.sender_id, address, answered=True)
            contact = self.routing_table.get(response.sender_id)
            self.timeouts.sample(contact.rtt if contact else None, self.clock.seconds() - started)
            if response.seen_address is not None:
                for observer in self._observers:
                    observer(address, response.sender_id, response.seen_address)
            return response

        def failed(failure):
            if node_id is not None and failure.check(QueryTimeout):
                self.routing_table.failed(node_id)
            return failure

        return d.addCallbacks(answered, failed)

    def ping(self, address):
        return self.query_contact(None, address, b"ping", {})

    # -- client side: lookups -------------------------------------------------

    def _lookup(self, target, method, args, width=None):
        width = width or self.settings.k
        seeds = self.routing_table.closest(target, max(width, self.settings.k * 2))
        lookup = Lookup(self, target, method, args, width, self.settings.alpha,
                        accept=self._accept_id)
        return lookup.start(seeds)

    def find_node(self, target):
        return self._lookup(target, b"find_node", {b"target": target})

    def get_peers(self, info_hash):
        """BEP 5 get_peers: the answered lookup Candidates nearest `info_hash`, each
        with its response `values` (`values` peers, `token` for announce_peer)."""
        return self._lookup(info_hash, b"get_peers", {b"info_hash": info_hash})

    @defer.inlineCallbacks
    def bootstrap(self, addresses=()):
        """Join through `(host, port)` pairs and the contacts saved last time.

        Fires with the number of contacts in the routing table afterwards."""
        given = yield self._resolve([tuple(a) for a in addresses])
        known = [a for _, a in self._saved_contacts] + given
        if known:
            yield defer.DeferredList(
                [self.query_contact(None, a, b"find_node", {b"target": self.node_id}) for a in known],
                consumeErrors=True,
            )
        nearest = yield self.find_node(self.node_id)
        # Fill the far buckets too, so lookups from here take few hops. A bucket
        # wholly nearer to us than the k-th nearest node just found needs no
        # refresh: that lookup has seen every node in it.
        radius = nearest[-1].distance if len(nearest) >= self.settings.k else 0
        own_key = self.routing_table.own_key
        sparse = [
            b for b in self.routing_table.buckets
            if not b.is_full() and b.max_distance(own_key) >= radius
        ]
        yield defer.DeferredList([self.find_node(b.random_id()) for b in sparse], consumeErrors=True)
        if self.store.items():
            self.republish()
        return len(self.routing_table)

    @defer.inlineCallbacks
    def _resolve(self, addresses):
        """Host names to IPv4 addresses (UDP sockets take addresses only); a name
        that does not resolve is logged and left out."""
        resolved = []
        for host, port in addresses:
            if not krpc.is_routable((host, port)) and hasattr(self.clock, "resolve"):
                try:
                    host = yield self.clock.resolve(host, timeout=(2,))
                except Exception as e:
                    self.log.warn("cannot resolve {host}: {error}", host=host, error=e)
                    continue
            if krpc.is_routable((host, port)):
                resolved.append((host, port))
        return resolved

    @defer.inlineCallbacks
    def get(self, target, salt=b""):
        """The newest item stored under `target`, or None; repairs stale replicas."""
        answered = yield self._lookup(target, b"get", {b"target": target})
        best, best_ttl = self._newest(target, salt, answered)
        if best is not None:
            self._repair(best, best_ttl, self._within_k_counting_us(target, answered))
        return best

    def _within_k_counting_us(self, target, answered):
        """The answered nodes (nearest first) that are among the k closest to `target`
        once this node is counted too. A lookup never lists its own node, so a holder
        that republishes would otherwise push the item to the (k+1)-th closest, a
        replica that owners' puts never reach and that lags behind their updates."""
        k = self.settings.k
        ours = int.from_bytes(self.node_id, "big") ^ int.from_bytes(target, "big")
        if len(answered) >= k and ours < answered[k - 1].distance:
            return answered[: k - 1]
        return answered

    def _newest(self, target, salt, answered):
        held = self.store.get(target)
        best, best_ttl = held if held else (None, None)
        for candidate in answered:
            item, ttl = self._item_from(candidate.values, salt)
            if item is None or item.target != target:
                continue
            if best is not None and (item.seq < best.seq or item == best):
                if item == best and ttl is not None:
                    best_ttl = max(best_ttl or 0, ttl)
                continue
            # Whatever would replace the best so far is verified itself: a copy of a
            # valid signature on another seq or value is a forgery.
            if self.signatures.verify(item):
                best, best_ttl = item, ttl
        return best, best_ttl

    def _item_from(self, values, salt):
        try:
            k, seq, sig, v = values[b"k"], values[b"seq"], values[b"sig"], values[b"v"]
            item = MutableItem(k=k, salt=salt, seq=seq, v=v, sig=sig)
            item.check_sizes()
        except (KeyError, TypeError, ValueError, ItemError):
            return None, None
        ttl = values.get(b"ttl")
        return item, (ttl if isinstance(ttl, int) and ttl > 0 else None)

    def _repair(self, item, ttl, answered):
        """Push `item` to the closest responders that hold an older one or none."""
        for candidate in answered:
            seq = candidate.values.get(b"seq")
            if isinstance(seq, int) and seq >= item.seq:
                continue
            token = candidate.values.get(b"token")
            if isinstance(token, bytes):
                self.send_put(candidate, token, item, ttl).addErrback(lambda _: None)

    def send_put(self, contact, token, item, ttl):
        """A BEP 44 put to one node (a lookup Candidate or a routing Contact)."""
        args = {**item_values(item), b"token": token}
        if item.salt:
            args[b"salt"] = item.salt
        if ttl is not None:
            args[b"ttl"] = max(1, int(ttl))
        return self.query_contact(contact.node_id, contact.address, b"put", args)

    def _send_put_twice(self, candidate, token, item, ttl):
        """A put that gets no answer is sent once more: the node answered our get a
        moment ago, so a lost datagram is likelier than a dead node (with 30% loss
        each way, one try stores on 49% of the k closest, two on 74%)."""
        def again(failure):
            failure.trap(QueryTimeout)
            return self.send_put(candidate, token, item, ttl)

        return self.send_put(candidate, token, item, ttl).addErrback(again)

    @defer.inlineCallbacks
    def put(self, item, ttl=None, width=None):
        """Store `item` on the k (or `width`) closest nodes; fires with how many accepted it."""
        ttl = self.settings.default_ttl if ttl is None else ttl
        answered = yield self._lookup(item.target, b"get", {b"target": item.target}, width)
        puts = [
            self._send_put_twice(c, c.values[b"token"], item, ttl)
            for c in answered
            if isinstance(c.values.get(b"token"), bytes)
        ]
        results = yield defer.DeferredList(puts, consumeErrors=True)
        return sum(1 for ok, _ in results if ok)

    def republish(self):
        """Bring held items to the closest nodes, if they lack them or hold an older one.

        Short-lived items every round. One with more than `long_republish_interval`
        left only once about that long has passed since it was put here or a fellow
        replica looked it up (that get repaired the replicas, ours included): each
        replica waits 3/4 to 5/4 of the interval, its share drawn from its id and the
        target, so that one goes first and spares the others (Kademlia 2.5). Covers
        a node that comes back online with a newer item than the swarm has."""
        long = self.settings.long_republish_interval
        due = [item for item, left in self.store.items() if left <= long]
        due += [item for item, _ in self.store.unrefreshed(long, self._republish_wait)]
        for item in due:
            self.store.refreshed(item.target)
            self.get(item.target, item.salt).addErrback(
                lambda f: self.log.failure("republish failed", f)
            )

    def _republish_wait(self, target):
        share = (int.from_bytes(target[-2:], "big") ^ int.from_bytes(self.node_id[-2:], "big")) / 65536
        return self.settings.long_republish_interval * (0.75 + 0.5 * share)

    def _fellow_looked_up(self, query, address):
        """A get from a verified contact among the k closest to an item we hold is a
        fellow replica's republication (or its user's read): its read-repair covers ours."""
        target = query.args.get(b"target")
        contact = self.routing_table.get(query.sender_id)
        if contact is None or not contact.verified or contact.address != address:
            return
        if isinstance(target, bytes) and self.store.get(target) is not None \
                and contact in self.routing_table.closest(target, self.settings.k):
            self.store.refreshed(target)

    # -- server side ---------------------------------------------------------

    def handle_query(self, query, address):
        handler = self.query_handlers.get(query.method)
        if handler is None:
            raise krpc.KRPCError(krpc.METHOD_UNKNOWN, "method unknown")
        values = handler(query.args, address)
        if values is None:
            return None
        if not query.read_only:
            self._heard_from(query.sender_id, address)
        if query.method == b"get":
            self._fellow_looked_up(query, address)
        values[b"id"] = self.node_id
        return values

    def _heard_from(self, node_id, address, answered=False):
        """A query from, or (`answered`) a reply to our query from, `node_id` at `address`."""
        if self._accept_id is not None and not self._accept_id(node_id, address):
            return  # an id its address may not have (BEP 42): never a contact
        is_new = self.routing_table.get(node_id) is None
        contact = self.routing_table.heard_from(node_id, address)
        if contact is None or contact.verified:
            return
        if answered:
            contact.verified = True
            self.handover.verified(contact)
        elif is_new:
            self.handover.met(contact)

    def _maintain(self):
        self.store.expire()
        for bucket in self.routing_table.stale_buckets()[:4]:
            self.find_node(bucket.random_id())
        for contact in self.routing_table.questionable()[:16]:
            self.query_contact(contact.node_id, contact.address, b"ping", {}).addErrback(
                lambda _: None
            )

