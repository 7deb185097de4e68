"""Puts that insist: the `width` closest nodes are asked, and the put is tried
again until at least `quorum` of them accept (Mainline mode). Foreign nodes
come and go (Pkarr measured one replica surviving an hour 85.9% of the time)
and refuse us while they are busy, so one round is not enough."""

from twisted.internet import defer, task
from twisted.logger import Logger


class QuorumDHT:
    """The `get`/`put` face that the publisher and the mailbox use, over a DHTNode."""

    log = Logger()

    def __init__(self, clock, node, width=20, quorum=8, attempts=3, retry_after=5.0):
        self._clock = clock
        self._node = node
        self.width = width
        self.quorum = quorum
        self.attempts = attempts
        self.retry_after = retry_after
        self.short = 0  # puts that ended below the quorum after every attempt
        self._waits = set()  # retries waiting their turn
        self._stopped = False

    def get(self, target, salt=b""):
        return self._node.get(target, salt=salt)

    @defer.inlineCallbacks
    def put(self, item, ttl=None):
        """Fires with the most nodes that accepted `item` in one attempt."""
        best = 0
        for attempt in range(self.attempts):
            if attempt:
                if self._stopped:
                    break
                wait = task.deferLater(self._clock, self.retry_after, lambda: None)
                self._waits.add(wait)
                wait.addBoth(lambda result, w=wait: self._waits.discard(w) or result)
                try:
                    yield wait
                except defer.CancelledError:
                    break
            accepted = yield self._node.put(item, ttl, width=self.width)
            best = max(best, accepted)
            if best >= self.quorum:
                return best
        self.short += 1
        self.log.info("put reached {n} of {quorum} nodes", n=best, quorum=self.quorum)
        return best

    def stop(self):
        """No more retries: the ones waiting end with what they have."""
        self._stopped = True
        for wait in list(self._waits):
            wait.cancel()
