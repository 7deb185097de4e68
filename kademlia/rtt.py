"""Adaptive query timeouts from measured round-trip times (RFC 6298 style).

A lookup must not wait seconds on a dead node while live candidates remain, so
each contact's timeout follows its own smoothed RTT; contacts never measured
use the estimate over all contacts.
"""

ALPHA = 1 / 8  # RFC 6298 gains
BETA = 1 / 4


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

    def __init__(self, floor=0.05, ceiling=2.0, initial=1.0):
        self.floor = floor
        self.ceiling = ceiling
        self.initial = initial
        self.overall = RTTEstimator()

    def sample(self, contact_estimator, rtt):
        self.overall.sample(rtt)
        if contact_estimator is not None:
            contact_estimator.sample(rtt)

    def timeout_for(self, contact_estimator):
        """Seconds after which a query to this contact counts as stalled."""
        own = contact_estimator.timeout(self.floor, self.ceiling) if contact_estimator else None
        if own is not None:
            return own
        overall = self.overall.timeout(self.floor, self.ceiling)
        return self.initial if overall is None else min(self.ceiling, 2 * overall)
