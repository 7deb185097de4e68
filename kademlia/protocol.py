"""KRPCProtocol: one UDP socket carrying KRPC queries, responses and other datagrams.

The client side (`query`) keeps a table of outstanding transactions, each a
Deferred with a timeout and a canceller. The table is bounded: past
`max_pending` a new query is refused at once (and counted), so nothing a
remote does can make it fill up. Transaction ids are random, so an off-path
sender cannot guess one to forge a response. The server side hands each incoming
query to a `QueryHandler` (the node) and sends back what it returns. Datagrams
that do not start with `d` (a bencoded dict) are not KRPC: they go to the
non-KRPC handler (the chat layer). Malformed or rate-limited datagrams are
dropped and counted; nothing a remote sends can raise out of here.
"""

import os

from twisted.internet import defer
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger

from kademlia import krpc
from kademlia.timers import cancel


class QueryTimeout(Exception):
    """No answer to a KRPC query in time."""


class NodeStopped(Exception):
    """Our own node has stopped: its queries fail at once and nothing more is sent."""


class TooManyQueries(Exception):
    """Our own queries in flight are at the cap: this one was not sent."""


class Stats:
    __slots__ = ("received", "queries", "responses", "malformed", "rate_limited", "timeouts", "sent",
                 "refused")

    def __init__(self):
        for name in self.__slots__:
            setattr(self, name, 0)

    def as_dict(self):
        return {name: getattr(self, name) for name in self.__slots__}


class KRPCProtocol(DatagramProtocol):
    log = Logger()
    noisy = False  # no "starting protocol" lines in the log

    TRANSACTION_LENGTH = 4

    def __init__(self, clock, handler, rate_limiter=None, other_rate_limiter=None, guard=None,
                 max_pending=4096, pacer=None):
        self._clock = clock
        self._handler = handler
        self._rate_limiter = rate_limiter
        self._other_rate_limiter = other_rate_limiter  # non-KRPC datagrams have their own budget
        self._guard = guard  # a reflection.ReflectionGuard: bounds answers to unproven sources
        self.max_pending = max_pending
        self._pending = {}  # transaction id -> (Deferred, address, timer)
        self.datagram_handler = None
        # fn(data, address) -> bool: a non-KRPC datagram of a session the owner already holds
        # with that address; the per-IP budget is for strangers, and a file transfer would hit it.
        self.datagram_exempt = None
        self.pacer = pacer  # a kademlia.pacing.QueryPacer: queries to one IP spaced out
        self.read_only = False  # BEP 43: ask other nodes to keep us out of their tables, answer none
        self.stats = Stats()
        self.stopped = False

    # -- client side --------------------------------------------------------

    def query(self, address, method, args, timeout, min_size=0):
        """Send a query, padded to `min_size` bytes; the Deferred fires with a
        krpc.Response or fails with KRPCError (the remote's error reply),
        QueryTimeout, NodeStopped or TooManyQueries."""
        if self.stopped:  # e.g. a lookup stepping on while the node stops
            return defer.fail(NodeStopped())
        if len(self._pending) >= self.max_pending:
            self.stats.refused += 1
            return defer.fail(TooManyQueries(f"{len(self._pending)} queries in flight"))
        transaction = self._new_transaction()
        d = defer.Deferred(lambda _: self._forget(transaction))
        data = krpc.encode_query(transaction, method, args, min_size, read_only=self.read_only)
        self._pending[transaction] = (d, address, None)

        def send():  # the timeout runs from the moment the query leaves
            if transaction in self._pending and not self.stopped:
                timer = self._clock.callLater(timeout, self._timed_out, transaction)
                self._pending[transaction] = (d, address, timer)
                self._send(data, address)

        if self.pacer is None:
            send()
        elif not self.pacer.run(address[0], send):
            del self._pending[transaction]
            self.stats.refused += 1
            return defer.fail(TooManyQueries(f"queries to {address[0]} queued at the cap"))
        return d

    def _new_transaction(self):
        # With at most max_pending of 2**32 ids taken, a retry is all but never needed.
        while True:
            transaction = os.urandom(self.TRANSACTION_LENGTH)
            if transaction not in self._pending:
                return transaction

    def _forget(self, transaction):
        entry = self._pending.pop(transaction, None)
        if entry is not None:
            cancel(entry[2])

    def _timed_out(self, transaction):
        d, address, _ = self._pending.pop(transaction)
        self.stats.timeouts += 1
        d.errback(QueryTimeout(f"no answer from {address[0]}:{address[1]}"))

    def pending_count(self):
        return len(self._pending)

    # -- server side and dispatch ------------------------------------------

    def datagramReceived(self, data, address):
        self.stats.received += 1
        if data[:1] != b"d":
            if self._other_rate_limiter is not None and not self._exempt(data, address) \
                    and not self._other_rate_limiter.allow(address[0]):
                self.stats.rate_limited += 1
            elif self.datagram_handler is not None:
                self._deliver_other(data, address)
            return
        if self._rate_limiter is not None and not self._rate_limiter.allow(address[0]):
            self.stats.rate_limited += 1
            return
        try:
            message = krpc.decode_message(data)
        except krpc.MalformedMessage:
            self.stats.malformed += 1
            return
        if isinstance(message, krpc.Query):
            self._answer(message, address, len(data))
        else:
            self._settle(message, address)

    def _exempt(self, data, address):
        return self.datagram_exempt is not None and self.datagram_exempt(data, address)

    def _deliver_other(self, data, address):
        try:
            self.datagram_handler(data, address)
        except Exception:
            self.log.failure("non-KRPC datagram handler failed")

    def _answer(self, query, address, request_size):
        self.stats.queries += 1
        if self.read_only:  # BEP 43: a read-only node answers no queries
            return
        try:
            values = self._handler.handle_query(query, address)
        except krpc.KRPCError as e:
            self._send(krpc.encode_error(query.transaction, e.code, e.message), address)
            return
        except Exception:
            self.log.failure("query handler failed for {method!r}", method=query.method)
            self._send(
                krpc.encode_error(query.transaction, krpc.SERVER_ERROR, "server error"), address
            )
            return
        if values is None:  # the handler chose not to answer
            return
        if self._guard is None:
            self._send(krpc.encode_response(query.transaction, values, address), address)
        else:
            self._send(self._guard.encode_response(query, values, address, request_size), address)

    def _settle(self, message, address):
        entry = self._pending.get(message.transaction)
        if entry is None or entry[1] != address:
            self.stats.malformed += 1  # unsolicited, late, or from the wrong address
            return
        del self._pending[message.transaction]
        d, _, timer = entry
        cancel(timer)
        self.stats.responses += 1
        if self._guard is not None:
            self._guard.answered_us(address)
        if isinstance(message, krpc.ErrorReply):
            d.errback(message.error)
        else:
            d.callback(message)

    def send_datagram(self, data, address):
        self._send(data, address)

    def _send(self, data, address):
        if self.transport is None:
            return
        self.stats.sent += 1
        try:
            self.transport.write(data, address)
        except (OSError, ValueError) as e:  # unreachable network, or not an IPv4 address: lost
            self.log.debug("send to {address} failed: {error}", address=address, error=e)

    def stop(self):
        """Fail every outstanding query and close the socket."""
        self.stopped = True
        if self.pacer is not None:
            self.pacer.stop()
        for transaction in list(self._pending):
            d, _, timer = self._pending.pop(transaction)
            cancel(timer)
            d.errback(NodeStopped())
        if self.transport is not None:
            return defer.maybeDeferred(self.transport.stopListening)
        return defer.succeed(None)
