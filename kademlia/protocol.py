"""KRPCProtocol: one UDP socket carrying KRPC queries, responses and other datagrams.

The client side (`query`) keeps a table of outstanding transactions, each a
Deferred with a timeout and a canceller. The server side hands each incoming
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


class Stats:
    __slots__ = ("received", "queries", "responses", "malformed", "rate_limited", "timeouts", "sent")

    def __init__(self):
        for name in self.__slots__:
            setattr(self, name, 0)

    def as_dict(self):
        return {name: getattr(self, name) for name in self.__slots__}


class KRPCProtocol(DatagramProtocol):
    log = Logger()
    noisy = False  # no "starting protocol" lines in the log

    def __init__(self, clock, handler, rate_limiter=None, other_rate_limiter=None):
        self._clock = clock
        self._handler = handler
        self._rate_limiter = rate_limiter
        self._other_rate_limiter = other_rate_limiter  # non-KRPC datagrams have their own budget
        self._pending = {}  # transaction id -> (Deferred, address, timer)
        self._next_transaction = int.from_bytes(os.urandom(2), "big")
        self.datagram_handler = None
        self.stats = Stats()
        self.stopped = False

    # -- client side --------------------------------------------------------

    def query(self, address, method, args, timeout):
        """Send a query; the Deferred fires with a krpc.Response or fails with
        KRPCError (the remote's error reply), QueryTimeout, or NodeStopped."""
        if self.stopped:  # e.g. a lookup stepping on while the node stops
            return defer.fail(NodeStopped())
        transaction = self._new_transaction()
        d = defer.Deferred(lambda _: self._forget(transaction))
        timer = self._clock.callLater(timeout, self._timed_out, transaction)
        self._pending[transaction] = (d, address, timer)
        self._send(krpc.encode_query(transaction, method, args), address)
        return d

    def _new_transaction(self):
        while True:
            self._next_transaction = (self._next_transaction + 1) & 0xFFFF
            transaction = self._next_transaction.to_bytes(2, "big")
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
            if self._other_rate_limiter is not None and not self._other_rate_limiter.allow(address[0]):
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
            self._answer(message, address)
        else:
            self._settle(message, address)

    def _deliver_other(self, data, address):
        try:
            self.datagram_handler(data, address)
        except Exception:
            self.log.failure("non-KRPC datagram handler failed")

    def _answer(self, query, address):
        self.stats.queries += 1
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
        if values is not None:  # None: the handler chose not to answer
            self._send(krpc.encode_response(query.transaction, values, address), address)

    def _settle(self, message, address):
        entry = self._pending.get(message.transaction)
        if entry is None or entry[1] != address:
            self.stats.malformed += 1  # unsolicited, late, or from the wrong address
            return
        del self._pending[message.transaction]
        d, _, timer = entry
        cancel(timer)
        self.stats.responses += 1
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
        for transaction in list(self._pending):
            d, _, timer = self._pending.pop(transaction)
            cancel(timer)
            d.errback(NodeStopped())
        if self.transport is not None:
            return defer.maybeDeferred(self.transport.stopListening)
        return defer.succeed(None)
