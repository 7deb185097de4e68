"""Adaptive query timeouts from measured round-trip times (RFC 6298 style).

A lookup must not wait seconds on a dead node while live candidates remain, so
each contact's timeout follows its own smoothed RTT; contacts never measured
use the estimate over all contacts.
"""

ALPHA = 1 / 8  # RFC 6298 gains
BETA = 1 / 4
STALL_SRTTS = 3  # a query this many smoothed RTTs late is stalled, however jittery the swarm


class RTTEstimator:
    __slots__ = ("srtt", "rttvar")

    def __init__(self):
        self.srtt = None
        self.rttvar = None

    def sample(self, rtt):
        if self.srtt is None:
            self.srtt, self.rttvar = rtt, rtt / 2
        else:
            self.rttvar = (1 - BETA) * self.rttvar + BETA * abs(self.srtt - rtt)
            self.srtt = (1 - ALPHA) * self.srtt + ALPHA * rtt

    def timeout(self, floor, ceiling):
        if self.srtt is None:
            return None
        return min(ceiling, max(floor, self.srtt + 4 * self.rttvar))


class TimeoutPolicy:
    """Per-contact estimators plus a global one for contacts never measured."""

    def __init__(self, floor=0.01, ceiling=2.0, initial=1.0):
        self.floor = floor
        self.ceiling = ceiling
        self.initial = initial
        self.overall = RTTEstimator()

    def sample(self, contact_estimator, rtt):
        self.overall.sample(rtt)
        if contact_estimator is not None:
            contact_estimator.sample(rtt)

    def timeout_for(self, contact_estimator, failures=0):
        """Seconds after which a query to this contact counts as stalled.

        A contact's own estimate can be old (taken while the swarm was busy, or
        before the contact died), so it never exceeds twice the swarm-wide one:
        stalling a slow contact early only costs an extra query, waiting on a
        dead one holds the whole lookup up. A contact whose last query timed out
        (`failures`) is likely dead: it stalls at the floor (its answer, if it
        comes, still counts, and makes it a contact like any other again)."""
        if failures:
            return self.floor
        overall = self.overall.timeout(self.floor, self.ceiling)
        if overall is None:
            general = self.initial
        else:  # the variance term swells with every scheduling hiccup: bound it
            general = min(overall, max(self.floor, STALL_SRTTS * self.overall.srtt))
        own = contact_estimator.timeout(self.floor, self.ceiling) if contact_estimator else None
        return general if own is None else min(own, general)
