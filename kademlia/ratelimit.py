"""Per-IP token buckets: bound what one address can make a node do."""

from collections import OrderedDict


class PerIPRateLimiter:
    """`allow(ip)` spends one token from that IP's bucket (rate/s, up to burst).

    Tracks at most `max_tracked` IPs, forgetting the least recently seen, so a
    flood from many spoofed sources cannot grow memory without bound.
    """

    def __init__(self, now, rate, burst, max_tracked=65536):
        self._now = now
        self.rate = rate
        self.burst = burst
        self.max_tracked = max_tracked
        self._buckets = OrderedDict()  # ip -> [tokens, last refill time]

    def allow(self, ip):
        now = self._now()
        bucket = self._buckets.get(ip)
        if bucket is None:
            if len(self._buckets) >= self.max_tracked:
                self._buckets.popitem(last=False)
            self._buckets[ip] = [self.burst - 1, now]
            return True
        self._buckets.move_to_end(ip)
        tokens = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
        bucket[1] = now
        if tokens < 1:
            bucket[0] = tokens
            return False
        bucket[0] = tokens - 1
        return True
