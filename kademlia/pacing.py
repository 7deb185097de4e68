"""Queries to one IP paced to at most one per `interval` (Mainline mode).

Foreign DHT nodes defend themselves per source IP: libtorrent blocks an IP for
five minutes once it sends more than about 5 packets a second
(`dht_block_ratelimit`). Our lookups run in parallel (presence, dead drops,
bucket refreshes), and in a small neighbourhood they all ask the same few
nodes, so without pacing a client would be blocked by exactly the nodes that
hold its records. A query that must wait is queued (a bounded queue per IP,
bounded number of IPs); its timeout starts only when it is sent.
"""

from collections import OrderedDict, deque

from kademlia.timers import cancel


class QueryPacer:
    def __init__(self, clock, interval, max_queued_per_ip=16, max_ips=4096):
        self._clock = clock
        self.interval = interval
        self.max_queued_per_ip = max_queued_per_ip
        self.max_ips = max_ips
        self._last_sent = OrderedDict()  # ip -> when its latest query went out, least recent first
        self._queues = {}  # ip -> deque of send functions waiting their turn
        self._timers = {}  # ip -> the DelayedCall that sends its queue's head
        self.delayed = 0  # queries that had to wait
        self.refused = 0  # queries not sent: that IP's queue was full

    def run(self, ip, send):
        """Call `send()` now or when `ip`'s turn comes; False (and never called) if its queue is full."""
        queue = self._queues.get(ip)
        if queue is None:
            wait = self._last_sent.get(ip, float("-inf")) + self.interval - self._clock.seconds()
            if wait <= 0:
                self._sent(ip)
                send()
                return True
            if len(self._queues) >= self.max_ips:
                self.refused += 1
                return False
            queue = self._queues[ip] = deque()
            self._timers[ip] = self._clock.callLater(wait, self._next, ip)
        elif len(queue) >= self.max_queued_per_ip:
            self.refused += 1
            return False
        queue.append(send)
        self.delayed += 1
        return True

    def wait(self, ip):
        """Seconds until a query to `ip` asked for now would be sent."""
        queue = self._queues.get(ip)
        if queue is None:
            return max(0.0, self._last_sent.get(ip, float("-inf")) + self.interval - self._clock.seconds())
        return max(0.0, self._timers[ip].getTime() - self._clock.seconds()) + len(queue) * self.interval

    def longest_wait(self):
        return max((self.wait(ip) for ip in self._queues), default=0.0)

    def _sent(self, ip):
        self._last_sent.pop(ip, None)
        self._last_sent[ip] = self._clock.seconds()
        while len(self._last_sent) > self.max_ips:  # the oldest are long past their interval
            oldest = next(iter(self._last_sent))
            if oldest in self._queues:
                break
            del self._last_sent[oldest]

    def _next(self, ip):
        queue = self._queues[ip]
        send = queue.popleft()
        self._sent(ip)
        if queue:
            self._timers[ip] = self._clock.callLater(self.interval, self._next, ip)
        else:
            del self._queues[ip], self._timers[ip]
        send()

    def stop(self):
        """Forget every waiting query (their callers time out or are failed by the protocol)."""
        for timer in self._timers.values():
            cancel(timer)
        self._timers.clear()
        self._queues.clear()
