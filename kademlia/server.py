"""The server side of a node: what it answers to each KRPC query (BEP 5, BEP 44).

`QueryServer.handlers()` is the table a DHTNode dispatches on, keyed by method
name; each handler takes `(args, address)` and returns the response values (or
raises KRPCError). The node exposes the table as `DHTNode.query_handlers`, so a
test node changes what it answers by replacing an entry.
"""

from kademlia import krpc
from kademlia.items import ItemError, MutableItem


class QueryServer:
    def __init__(self, routing_table, store, tokens):
        self.routing_table = routing_table
        self.store = store
        self.tokens = tokens

    def handlers(self):
        return {
            b"ping": self.ping,
            b"find_node": self.find_node,
            b"get_peers": self.get_peers,
            b"get": self.get,
            b"put": self.put,
        }

    def _closest_nodes(self, target):
        if not isinstance(target, bytes) or len(target) != krpc.ID_LENGTH:
            raise krpc.KRPCError(krpc.PROTOCOL_ERROR, "bad target")
        return krpc.encode_nodes(self.routing_table.closest(target))

    def ping(self, args, address):
        return {}

    def find_node(self, args, address):
        return {b"nodes": self._closest_nodes(args.get(b"target"))}

    def get_peers(self, args, address):
        # No peers are ever stored: answer like a node that knows none (BEP 5).
        nodes = self._closest_nodes(args.get(b"info_hash"))
        return {b"nodes": nodes, b"token": self.tokens.issue(address[0])}

    def get(self, args, address):
        target = args.get(b"target")
        values = {b"nodes": self._closest_nodes(target), b"token": self.tokens.issue(address[0])}
        held = self.store.get(target)
        if held is not None:
            item, remaining = held
            values.update(item_values(item))
            values[b"ttl"] = max(1, int(remaining))
        return values

    def put(self, args, address):
        if not self.tokens.is_valid(address[0], args.get(b"token")):
            raise krpc.KRPCError(krpc.PROTOCOL_ERROR, "bad token")
        ttl, cas = args.get(b"ttl"), args.get(b"cas")
        try:
            item = MutableItem(
                k=args[b"k"], salt=args.get(b"salt", b""), seq=args[b"seq"], v=args[b"v"], sig=args[b"sig"]
            )
        except KeyError:
            raise krpc.KRPCError(krpc.PROTOCOL_ERROR, "put without k, seq, v or sig") from None
        except ItemError as e:
            raise krpc.KRPCError(e.code, e.message) from None
        self.store.put(
            item,
            ttl if isinstance(ttl, int) else None,
            address[0],
            cas if isinstance(cas, int) else None,
        )
        return {}


def item_values(item):
    """The fields of a BEP 44 item as `get` answers and `put` sends them."""
    return {b"k": item.k, b"seq": item.seq, b"sig": item.sig, b"v": item.v}
