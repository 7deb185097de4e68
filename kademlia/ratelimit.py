"""Token buckets: bound what one address, or everyone together, can make a node do."""

from collections import OrderedDict


class TokenBucket:
    """`allow(cost)` spends `cost` tokens if there are that many (`rate` per second
    come back, up to `burst`)."""

    __slots__ = ("_now", "rate", "burst", "_tokens", "_refilled_at")

    def __init__(self, now, rate, burst):
        self._now = now
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._refilled_at = now()

    def allow(self, cost=1):
        now = self._now()
        self._tokens = min(self.burst, self._tokens + (now - self._refilled_at) * self.rate)
        self._refilled_at = now
        if self._tokens < cost:
            return False
        self._tokens -= cost
        return True


class PerIPRateLimiter:
    """`allow(ip, cost)` spends from that IP's own TokenBucket.

    Tracks at most `max_tracked` IPs, forgetting the least recently seen, so a
    flood from many spoofed sources cannot grow memory without bound.
    """

    def __init__(self, now, rate, burst, max_tracked=65536):
        self._now = now
        self.rate = rate
        self.burst = burst
        self.max_tracked = max_tracked
        self._buckets = OrderedDict()  # ip -> TokenBucket

    def allow(self, ip, cost=1):
        bucket = self._buckets.get(ip)
        if bucket is None:
            if len(self._buckets) >= self.max_tracked:
                self._buckets.popitem(last=False)
            bucket = self._buckets[ip] = TokenBucket(self._now, self.rate, self.burst)
        else:
            self._buckets.move_to_end(ip)
        return bucket.allow(cost)
