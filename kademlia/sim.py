"""An in-memory UDP network on a virtual clock, for simulating many DHT nodes.

Each node's DatagramProtocol gets a SimTransport instead of a socket. A datagram
is handed to the receiver's ``datagramReceived`` by ``clock.callLater`` after
the link's latency, unless a fault drops it. Faults are the ones the prototype
wanted to test: loss, slow links, limited bandwidth, partitions, one-way
blocks and dead machines. All randomness comes from one ``random.Random(seed)``
so that a seed replays a run exactly.

Addresses are fake IPv4 strings in 10.0.0.0/8 (the DHT packs them as compact
IPv4); they never reach a real socket.

Memory is O(nodes): a few dict entries per address and one pending DelayedCall
per datagram in flight; nothing is kept per datagram once it is delivered.
Exceptions raised by a protocol's ``datagramReceived`` propagate out of
``clock.advance``, so a bug in a simulated node fails the test that found it.

Any IReactorTime works as the clock. ``SimClock`` is the one for large runs:
``task.Clock`` re-sorts every pending call on each callLater and runs all the
calls of an ``advance(t)`` at the end time t; SimClock keeps a heap and runs
each call at its own time, so one ``advance`` can cover a whole scenario.
"""

import errno
import heapq
import ipaddress
import itertools
import random
from collections import Counter

from twisted.internet import defer
from twisted.internet.address import IPv4Address
from twisted.internet.base import DelayedCall
from twisted.internet.error import CannotListenError, MessageLengthError
from twisted.internet.interfaces import IReactorTime
from zope.interface import implementer

MAX_DATAGRAM = 65507            # largest UDP payload over IPv4
ACCESS_DELAY_RANGE = (0.005, 0.025)  # per node; a link adds both ends: 10-50 ms
SIM_PORT = 6881                 # the port next_address() hands out


class SimTransport:
    """A bound fake UDP port: ``write``, ``getHost``, ``stopListening``."""

    __slots__ = ("_network", "address", "protocol", "listening")

    def __init__(self, network, address, protocol):
        self._network = network
        self.address = address
        self.protocol = protocol
        self.listening = True

    def write(self, data, addr):
        """Send one datagram to ``addr``; faults drop it silently, like UDP."""
        if not self.listening:
            raise OSError(errno.EBADF, "write on a closed simulated port")
        self._network._send(self.address, data, addr)

    def getHost(self):
        return IPv4Address("UDP", self.address[0], self.address[1])

    def stopListening(self):
        """Unbind the address and stop the protocol; later datagrams are dropped.

        Returns an already fired Deferred, or None if the port was closed already.
        """
        if not self.listening:
            return None
        self.listening = False
        self._network._unbind(self)
        self.protocol.doStop()
        return defer.succeed(None)


class SimNetwork:
    """Datagram delivery between SimTransports, with faults injected by seed.

    ``latency`` is None (each address gets an access delay from the rng when it
    first listens; a link's latency is the sum of its two ends), a number of
    seconds, or a callable ``(src, dst, rng) -> seconds``. ``loss`` is the
    global drop probability; ``set_loss`` overrides it per address and a
    datagram is lost with the larger probability of its two ends.

    Counters: ``sent``, ``delivered``, ``dropped`` (and ``drops``, by reason:
    loss, dead, partition, blocked, queue_full, no_listener).
    """

    def __init__(self, clock, seed=0, latency=None, loss=0.0):
        self.clock = clock
        self.rng = random.Random(seed)
        self.latency = latency
        self.loss = loss
        self.sent = 0
        self.delivered = 0
        self.dropped = 0
        self.drops = Counter()
        self._ports = {}            # address -> SimTransport
        self._access_delay = {}     # address -> seconds, kept across re-listens
        self._loss = {}             # address -> loss probability override
        self._bandwidth = {}        # address -> (bytes per second, queue limit or None)
        self._busy_until = {}       # address -> when its uplink finishes sending
        self._dead = set()
        self._blocked = set()       # (src, dst) pairs
        self._group = {}            # address -> partition group index
        self._next_host = 1

    # -- endpoints ---------------------------------------------------------

    def listen(self, address, protocol):
        """Bind ``protocol`` to ``address`` (host, port) and start it."""
        host, port = address
        ipaddress.IPv4Address(host)  # ValueError: the DHT can only carry IPv4 here
        address = (host, port)
        if address in self._ports:
            raise CannotListenError(host, port, OSError(errno.EADDRINUSE, "address in use"))
        transport = SimTransport(self, address, protocol)
        self._ports[address] = transport
        if address not in self._access_delay:
            self._access_delay[address] = self.rng.uniform(*ACCESS_DELAY_RANGE)
        protocol.makeConnection(transport)
        return transport

    def next_address(self):
        """A fresh ('10.x.y.z', 6881) address that nothing listens on."""
        while True:
            n = self._next_host
            self._next_host += 1
            if n >= 2**24 - 1:
                raise RuntimeError("the simulated 10.0.0.0/8 network is full")
            address = ("10.%d.%d.%d" % (n >> 16, (n >> 8) & 255, n & 255), SIM_PORT)
            if address not in self._ports:
                return address

    def is_listening(self, address):
        return address in self._ports

    def _unbind(self, transport):
        del self._ports[transport.address]

    # -- faults ----------------------------------------------------------------

    def set_loss(self, address, probability):
        """Override the loss probability of datagrams to/from ``address`` (None: global)."""
        if probability is None:
            self._loss.pop(address, None)
        else:
            self._loss[address] = probability

    def set_bandwidth(self, address, bytes_per_second, queue_limit=None):
        """Limit ``address``'s uplink; datagrams queue serially behind each other.

        With ``queue_limit`` (bytes), a datagram that would make the queue longer
        is dropped, as a full router buffer would. ``bytes_per_second=None``
        removes the limit.
        """
        if bytes_per_second is None:
            self._bandwidth.pop(address, None)
            self._busy_until.pop(address, None)
        else:
            self._bandwidth[address] = (float(bytes_per_second), queue_limit)

    def partition(self, groups):
        """Split the network: only addresses in the same group reach each other.

        Addresses in no group form one more group of their own.
        """
        self._group = {address: index for index, group in enumerate(groups)
                       for address in group}

    def heal(self):
        """End the partition."""
        self._group = {}

    def kill(self, address):
        """Make ``address`` a dead machine: everything to or from it vanishes."""
        self._dead.add(address)

    def revive(self, address):
        self._dead.discard(address)

    def block(self, src, dst):
        """Drop datagrams from ``src`` to ``dst`` (one way only)."""
        self._blocked.add((src, dst))

    def unblock(self, src, dst):
        self._blocked.discard((src, dst))

    # -- delivery ----------------------------------------------------------------

    def _send(self, src, data, dst):
        if type(data) is not bytes:
            raise TypeError("datagrams are bytes, not %s" % type(data).__name__)
        if len(data) > MAX_DATAGRAM:
            raise MessageLengthError("%d bytes" % len(data))
        if type(dst) is not tuple:
            dst = tuple(dst)
        self.sent += 1
        if src in self._dead or dst in self._dead:
            return self._drop("dead")
        departure = self._queue(src, len(data))
        if departure is None:
            return self._drop("queue_full")
        if self._group and self._group.get(src, -1) != self._group.get(dst, -1):
            return self._drop("partition")
        if (src, dst) in self._blocked:
            return self._drop("blocked")
        loss = max(self._loss.get(src, self.loss), self._loss.get(dst, self.loss))
        if loss and self.rng.random() < loss:
            return self._drop("loss")
        self.clock.callLater(departure + self._latency(src, dst), self._deliver, data, src, dst)

    def _queue(self, src, size):
        """Seconds from now until ``src``'s uplink has sent ``size`` more bytes.

        None if the datagram does not fit in the uplink's queue.
        """
        limit = self._bandwidth.get(src)
        if limit is None:
            return 0.0
        rate, queue_limit = limit
        now = self.clock.seconds()
        backlog = max(0.0, self._busy_until.get(src, now) - now)
        if queue_limit is not None and backlog * rate + size > queue_limit:
            return None
        done = backlog + size / rate
        self._busy_until[src] = now + done
        return done

    def _latency(self, src, dst):
        latency = self.latency
        if latency is None:
            middle = sum(ACCESS_DELAY_RANGE) / 2  # for addresses nobody listens on
            return self._access_delay.get(src, middle) + self._access_delay.get(dst, middle)
        if callable(latency):
            return latency(src, dst, self.rng)
        return latency

    def _deliver(self, data, src, dst):
        port = self._ports.get(dst)
        if port is None:
            return self._drop("no_listener")
        if dst in self._dead:  # died while the datagram was in flight
            return self._drop("dead")
        self.delivered += 1
        port.protocol.datagramReceived(data, src)

    def _drop(self, reason):
        self.dropped += 1
        self.drops[reason] += 1


@implementer(IReactorTime)
class SimClock:
    """A discrete-event clock: ``advance`` runs due calls in time order, and
    ``seconds()`` inside each call is that call's scheduled time.

    Equal times run in the order they were scheduled. A drop-in for
    ``task.Clock`` (``seconds``, ``callLater``, ``getDelayedCalls``,
    ``advance``, ``pump``); exceptions from calls propagate out of ``advance``.
    """

    COMPACT_AFTER = 1024  # cancelled calls tolerated in the heap before a sweep

    def __init__(self, start=0.0):
        self.rightNow = start
        self._heap = []  # (time, tie-breaker, DelayedCall); stale entries skipped
        self._order = itertools.count()
        self._cancelled = 0

    def seconds(self):
        return self.rightNow

    def callLater(self, delay, callable, *args, **kw):
        call = DelayedCall(self.rightNow + delay, callable, args, kw,
                           self._on_cancel, self._push, self.seconds)
        self._push(call)
        return call

    def getDelayedCalls(self):
        pending = {id(entry[2]): entry[2] for entry in self._heap if self._is_current(entry)}
        return list(pending.values())

    def advance(self, amount):
        target = self.rightNow + amount
        heap = self._heap
        while heap and heap[0][0] <= target:
            entry = heapq.heappop(heap)
            call = entry[2]
            if not self._is_current(entry):
                if call.cancelled and self._cancelled:
                    self._cancelled -= 1
                continue
            if call.delayed_time:  # DelayedCall.reset/delay to a later time
                call.activate_delay()
                self._push(call)
                continue
            self.rightNow = max(self.rightNow, entry[0])
            call.called = 1
            call.func(*call.args, **call.kw)
        self.rightNow = target

    def pump(self, timings):
        for amount in timings:
            self.advance(amount)

    def _push(self, call):
        # Also DelayedCall's resetter: a call moved earlier gets a new entry and
        # its old one goes stale (its time no longer matches).
        heapq.heappush(self._heap, (call.time, next(self._order), call))

    @staticmethod
    def _is_current(entry):
        call = entry[2]
        return not (call.cancelled or call.called) and entry[0] == call.time

    def _on_cancel(self, call):
        # Cancelled calls stay in the heap until popped; sweep them when they pile up.
        # (DelayedCall marks itself cancelled only after this returns.)
        self._cancelled += 1
        if self._cancelled > self.COMPACT_AFTER and self._cancelled * 2 > len(self._heap):
            # In place: advance() may be iterating this very list right now.
            self._heap[:] = [entry for entry in self._heap
                             if entry[2] is not call and self._is_current(entry)]
            heapq.heapify(self._heap)
            self._cancelled = 0
