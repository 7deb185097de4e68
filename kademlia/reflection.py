"""Reflection bounds: a stranger's datagram must not make us send much more to
whatever address its (possibly spoofed) source names.

A source has proven its address when it answered one of our queries there (a
round trip we started), or when its query carries a valid write token for its
IP (tokens are only ever sent to the address that asked, BEP 5). An answer to
an unproven source is at most `factor` times the query's bytes: `nodes` is cut
down to fit. A BEP 44 value is the exception, since other BEP 44 clients ask
for it without any proof: it is sent while that IP's byte budget lasts, and
withheld (the answer then looks like one from a node without the item) after.
"""

from collections import OrderedDict

from kademlia import krpc
from kademlia.ratelimit import PerIPRateLimiter

ITEM_FIELDS = (b"k", b"seq", b"sig", b"v", b"ttl")
# The bytes of a `get` answer besides `nodes` and an item: t, y, ip, id, token
# and the keys, with room to spare for a longer transaction id.
ANSWER_OVERHEAD = 100


def padded_size(k, factor):
    """How long our queries that are answered with `nodes` must be, so that a full
    answer (k nodes, a token) fits within the bound where we are unproven."""
    return -(-(k * krpc.COMPACT_NODE_LENGTH + ANSWER_OVERHEAD) // factor)


class ReflectionGuard:
    def __init__(self, now, token_valid, factor=3, value_rate=3000.0, value_burst=6000,
                 max_tracked=65536):
        self._token_valid = token_valid  # token_valid(ip, token) -> bool
        self.factor = factor
        self._value_budget = PerIPRateLimiter(now, value_rate, value_burst, max_tracked)
        self._round_trips = OrderedDict()  # addresses that answered us, least recent first
        self._max_tracked = max_tracked
        self.trimmed = 0  # answers cut down for an unproven source
        self.withheld = 0  # values not sent: that source's budget was spent

    def answered_us(self, address):
        """A reply to one of our queries came from `address`: it is proven."""
        self._round_trips[address] = True
        self._round_trips.move_to_end(address)
        if len(self._round_trips) > self._max_tracked:
            self._round_trips.popitem(last=False)

    def is_proven(self, address, args):
        return address in self._round_trips or self._token_valid(address[0], args.get(b"token"))

    def encode_response(self, query, values, address, request_size):
        """The response datagram for `query`, bounded if its source is unproven."""
        data = krpc.encode_response(query.transaction, values, address)
        limit = self.factor * request_size
        if len(data) <= limit or self.is_proven(address, query.args):
            return data
        if b"v" in values:
            if self._value_budget.allow(address[0], len(data)):
                return data  # whole: a lookup that found the value still needs every node
            self.withheld += 1
            values = {key: value for key, value in values.items() if key not in ITEM_FIELDS}
            data = krpc.encode_response(query.transaction, values, address)
        if len(data) > limit:
            self.trimmed += 1
            data = self._without_some_nodes(query, values, address, len(data) - limit)
        return data

    @staticmethod
    def _without_some_nodes(query, values, address, excess):
        nodes = values.get(b"nodes")
        if not isinstance(nodes, bytes):
            return krpc.encode_response(query.transaction, values, address)
        # Each entry dropped saves its 26 bytes (and maybe a length digit).
        keep = max(0, len(nodes) // krpc.COMPACT_NODE_LENGTH - -(-excess // krpc.COMPACT_NODE_LENGTH))
        values = dict(values)
        values[b"nodes"] = nodes[: keep * krpc.COMPACT_NODE_LENGTH]
        return krpc.encode_response(query.transaction, values, address)
