"""Announced peers (BEP 5 `announce_peer`, and `values` in `get_peers` answers).

kadchat uses them for one thing: publicly reachable kadchat nodes announce
themselves as introducers under one well-known info-hash
(kadchat.introducer_discovery), so that a swarm of kadchat nodes alone serves
that search as Mainline nodes do. Bounded as everything a stranger can fill:
an announce needs a token for the announcer's IP (so no spoofed source), each
info-hash keeps at most `max_per_hash` peers and the store `max_hashes`
info-hashes, the least recently announced giving way, and a peer is kept
`lifetime` seconds unless announced again (libtorrent: 30 minutes).
"""

from collections import OrderedDict

from kademlia import krpc

VALUES_PER_ANSWER = 8  # peers in one get_peers answer: 8 x 8 bytes, well inside any reflection bound


class PeerStore:
    def __init__(self, now, lifetime=1800.0, max_hashes=1024, max_per_hash=64):
        self._now = now
        self.lifetime = lifetime
        self.max_hashes = max_hashes
        self.max_per_hash = max_per_hash
        self._peers = OrderedDict()  # info-hash -> OrderedDict(address -> time announced), oldest first

    def __len__(self):
        return sum(len(p) for p in self._peers.values())

    def announce(self, info_hash, address):
        peers = self._peers.pop(info_hash, None) or OrderedDict()
        self._peers[info_hash] = peers  # the most recently announced hash last
        peers.pop(address, None)
        peers[address] = self._now()
        while len(peers) > self.max_per_hash:
            peers.popitem(last=False)
        while len(self._peers) > self.max_hashes:
            self._peers.popitem(last=False)

    def peers(self, info_hash, limit=VALUES_PER_ANSWER):
        """The newest unexpired peers announced under `info_hash`, newest first."""
        peers = self._peers.get(info_hash)
        if not peers:
            return []
        oldest = self._now() - self.lifetime
        while peers and next(iter(peers.values())) < oldest:
            peers.popitem(last=False)
        return list(reversed(peers))[:limit]


class PeerHandlers:
    """`get_peers` (the node's own answer, plus `values`) and `announce_peer` for
    `DHTNode.query_handlers`; `get_peers` is the QueryServer's handler it extends."""

    def __init__(self, store, tokens, get_peers):
        self.store = store
        self._tokens = tokens
        self._get_peers = get_peers

    def handlers(self):
        return {b"get_peers": self.get_peers, b"announce_peer": self.announce_peer}

    def get_peers(self, args, address):
        values = self._get_peers(args, address)
        peers = self.store.peers(args.get(b"info_hash"))
        if peers:
            values[b"values"] = [krpc.encode_address(p) for p in peers]
        return values

    def announce_peer(self, args, address):
        info_hash, port = args.get(b"info_hash"), args.get(b"port")
        if not isinstance(info_hash, bytes) or len(info_hash) != krpc.ID_LENGTH:
            raise krpc.KRPCError(krpc.PROTOCOL_ERROR, "bad info_hash")
        if not self._tokens.is_valid(address[0], args.get(b"token")):
            raise krpc.KRPCError(krpc.PROTOCOL_ERROR, "bad token")
        if args.get(b"implied_port") == 1:
            port = address[1]
        if not isinstance(port, int) or not 0 < port < 65536:
            raise krpc.KRPCError(krpc.PROTOCOL_ERROR, "bad port")
        self.store.announce(info_hash, (address[0], port))
        return {}
