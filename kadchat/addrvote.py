"""Our external address and NAT class, from the `ip` field of DHT responses.

Every KRPC response tells us the address it came from as the responder saw it
(BEP 42 form). Each responder IP gets one vote (its latest; votes expire), so a
host running many nodes, or one liar, cannot outvote the others:

- the external IP is the one a strict majority of voters report, once at least
  `min_voters` distinct IPs have voted;
- the NAT class compares the ports those voters saw: the same port from a
  majority of at least `min_voters` means a consistent (endpoint-independent)
  mapping, which hole punching can use; at least `min_voters` different ports
  mean a random (address-dependent) mapping; anything else is unknown.
"""

from collections import Counter

from kademlia import nodeid

CONSISTENT = "consistent"
RANDOM = "random"
UNKNOWN = "unknown"


class AddressVotes:
    MAX_VOTERS = 256  # the oldest votes make room when more IPs vote within a window

    def __init__(self, now, window: float = 300.0, min_voters: int = 3):
        self._now = now
        self._window = window
        self._min_voters = min_voters
        self._votes = {}  # voter IP -> (seen (host, port), time of the vote)

    def add(self, voter_addr, voter_id, seen_addr) -> None:
        """Record that the node at `voter_addr` saw us at `seen_addr`.

        Matches DHTNode.add_response_observer's callback; `voter_id` is not
        counted: votes are per IP, whatever node ids one host claims.
        """
        host, port = seen_addr
        if not isinstance(port, int) or not 0 < port < 65536:
            return
        self._votes.pop(voter_addr[0], None)  # re-inserted last: the dict stays in vote order
        self._votes[voter_addr[0]] = ((host, port), self._now())
        while len(self._votes) > self.MAX_VOTERS:
            del self._votes[next(iter(self._votes))]

    def _live(self):
        """The unexpired seen addresses, oldest vote first."""
        oldest = self._now() - self._window
        return [seen for seen, when in self._votes.values() if when >= oldest]

    def _majority_ip_votes(self):
        seen = self._live()
        if len(seen) < self._min_voters:
            return []
        ip, count = Counter(host for host, _ in seen).most_common(1)[0]
        return [s for s in seen if s[0] == ip] if count * 2 > len(seen) else []

    def external_address(self):
        """(ip, port) as most voters see us, or None while unsure.

        With a random mapping each peer sees another port; the one given then is
        the most common, the newest among equals.
        """
        votes = self._majority_ip_votes()
        if not votes:
            return None
        ports = Counter(port for _, port in votes)
        top = max(ports.values())
        newest_top = next(port for _, port in reversed(votes) if ports[port] == top)
        return votes[0][0], newest_top

    def nat_class(self) -> str:
        """CONSISTENT, RANDOM or UNKNOWN (see the module docstring)."""
        votes = self._majority_ip_votes()
        ports = Counter(port for _, port in votes)
        if not ports:
            return UNKNOWN
        top = max(ports.values())
        if top >= self._min_voters and top * 2 > len(votes):
            return CONSISTENT
        if len(ports) >= self._min_voters and top * 2 <= len(votes):
            return RANDOM
        return UNKNOWN


class IdRenewal:
    """A DHT response observer, after `votes.add`: a new node id when the voted
    external address moves, since an id kept across addresses would link them
    (issue 12, 3). `node` has `renew_id(external_ip)`. With `from_first`
    (Mainline mode) the first vote renews it too unless it fits the address
    already (a server's saved id), so that it does as BEP 42 wants from the start."""

    def __init__(self, node, votes, from_first=False):
        self._node = node
        self._votes = votes
        self._from_first = from_first
        self._last = None

    def __call__(self, *_response):
        address = self._votes.external_address()
        if address is None or address == self._last:
            return
        if self._last is not None or (self._from_first and not _fits(self._node.node_id, address[0])):
            self._node.renew_id(address[0])
        self._last = address


def _fits(node_id, ip):
    try:
        return nodeid.is_valid(node_id, ip)
    except ValueError:  # not an IPv4 address
        return False
