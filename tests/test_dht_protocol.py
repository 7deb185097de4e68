"""kademlia.protocol: transactions, timeouts, errors, dispatch and drops, on an in-memory transport."""

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from kademlia import bencode, krpc
from kademlia.protocol import KRPCProtocol, NodeStopped, QueryTimeout
from kademlia.ratelimit import PerIPRateLimiter

OWN_ID = b"O" * 20
PEER_ID = b"P" * 20
PEER = ("127.0.0.2", 6881)
OTHER = ("127.0.0.3", 6881)


class FakeTransport:
    def __init__(self):
        self.written = []
        self.stopped = False

    def write(self, data, address):
        self.written.append((data, address))

    def stopListening(self):
        self.stopped = True


class Handler:
    def __init__(self):
        self.queries = []

    def handle_query(self, query, address):
        self.queries.append((query, address))
        if query.method == b"ping":
            return {b"id": OWN_ID}
        if query.method == b"refuse":
            raise krpc.KRPCError(203, "refused")
        if query.method == b"crash":
            raise RuntimeError("bug")
        raise krpc.KRPCError(krpc.METHOD_UNKNOWN, "method unknown")


class ProtocolTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.handler = Handler()
        self.limiter = PerIPRateLimiter(self.clock.seconds, rate=10, burst=5)
        self.protocol = KRPCProtocol(self.clock, self.handler, self.limiter)
        self.transport = FakeTransport()
        self.protocol.makeConnection(self.transport)

    def last_sent(self):
        data, address = self.transport.written[-1]
        return krpc.decode_message(data), address

    def reply(self, values, address=PEER):
        sent, _ = self.last_sent()
        self.protocol.datagramReceived(
            krpc.encode_response(sent.transaction, dict(values, id=PEER_ID), address), address
        )

    def test_a_response_from_the_queried_address_fires_the_query(self):
        d = self.protocol.query(PEER, b"ping", {b"id": OWN_ID}, timeout=2)
        sent, address = self.last_sent()
        self.assertEqual((sent.method, address), (b"ping", PEER))
        self.reply({b"x": 1})
        response = self.successResultOf(d)
        self.assertEqual((response.sender_id, response.values[b"x"]), (PEER_ID, 1))
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(self.protocol.pending_count(), 0)

    def test_a_response_from_another_address_is_ignored_and_the_query_times_out(self):
        d = self.protocol.query(PEER, b"ping", {b"id": OWN_ID}, timeout=2)
        self.reply({}, address=OTHER)
        self.assertNoResult(d)
        self.assertEqual(self.protocol.stats.malformed, 1)
        self.clock.advance(2)
        self.failureResultOf(d, QueryTimeout)
        self.assertEqual(self.protocol.stats.timeouts, 1)

    def test_an_error_reply_fails_the_query_with_its_code(self):
        d = self.protocol.query(PEER, b"put", {b"id": OWN_ID}, timeout=2)
        sent, _ = self.last_sent()
        self.protocol.datagramReceived(krpc.encode_error(sent.transaction, 302, "old seq"), PEER)
        failure = self.failureResultOf(d, krpc.KRPCError)
        self.assertEqual(failure.value.code, 302)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_a_late_response_after_the_timeout_is_dropped(self):
        d = self.protocol.query(PEER, b"ping", {b"id": OWN_ID}, timeout=2)
        self.clock.advance(2)
        self.failureResultOf(d, QueryTimeout)
        self.reply({})
        self.assertEqual(self.protocol.stats.responses, 0)

    def test_cancelling_a_query_forgets_it_and_its_timer(self):
        d = self.protocol.query(PEER, b"ping", {b"id": OWN_ID}, timeout=2)
        d.cancel()
        self.failureResultOf(d)
        self.assertEqual(self.protocol.pending_count(), 0)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_concurrent_queries_get_distinct_transactions(self):
        queries = [self.protocol.query(PEER, b"ping", {b"id": OWN_ID}, timeout=2) for _ in range(1000)]
        transactions = {krpc.decode_message(data).transaction for data, _ in self.transport.written}
        self.assertEqual(len(transactions), 1000)
        self.protocol.stop()
        for d in queries:
            self.failureResultOf(d, NodeStopped)

    def test_queries_are_answered(self):
        self.protocol.datagramReceived(krpc.encode_query(b"t1", b"ping", {b"id": PEER_ID}), PEER)
        reply, address = self.last_sent()
        self.assertIsInstance(reply, krpc.Response)
        self.assertEqual((reply.transaction, reply.sender_id, address), (b"t1", OWN_ID, PEER))
        self.assertEqual(reply.seen_address, PEER)

    def test_handler_errors_become_krpc_errors(self):
        self.protocol.datagramReceived(krpc.encode_query(b"t1", b"refuse", {b"id": PEER_ID}), PEER)
        self.assertEqual(self.last_sent()[0].error.code, 203)
        self.protocol.datagramReceived(krpc.encode_query(b"t2", b"nosuch", {b"id": PEER_ID}), PEER)
        self.assertEqual(self.last_sent()[0].error.code, 204)

    def test_a_handler_bug_answers_202_and_does_not_raise(self):
        self.protocol.datagramReceived(krpc.encode_query(b"t1", b"crash", {b"id": PEER_ID}), PEER)
        self.assertEqual(self.last_sent()[0].error.code, 202)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_malformed_datagrams_are_counted_and_not_answered(self):
        for data in (b"d", b"de", b"d1:t0:e", bencode.encode({b"t": b"x", b"y": b"q"})):
            self.protocol.datagramReceived(data, PEER)
        self.assertEqual(self.protocol.stats.malformed, 4)
        self.assertEqual(self.transport.written, [])

    def test_non_krpc_datagrams_go_to_the_datagram_handler(self):
        received = []
        self.protocol.datagram_handler = lambda data, address: received.append((data, address))
        self.protocol.datagramReceived(b"\x01chat", PEER)
        self.assertEqual(received, [(b"\x01chat", PEER)])

    def test_a_failing_datagram_handler_is_contained(self):
        def broken(data, address):
            raise ValueError("bad chat datagram")

        self.protocol.datagram_handler = broken
        self.protocol.datagramReceived(b"\x01chat", PEER)
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)

    def test_non_krpc_datagrams_without_a_handler_are_ignored(self):
        self.protocol.datagramReceived(b"\x01chat", PEER)
        self.assertEqual(self.transport.written, [])

    def test_queries_over_the_per_ip_rate_are_dropped_and_counted(self):
        for n in range(20):
            self.protocol.datagramReceived(krpc.encode_query(b"t%d" % n, b"ping", {b"id": PEER_ID}), PEER)
        self.assertEqual(len(self.transport.written), 5)
        self.assertEqual(self.protocol.stats.rate_limited, 15)
        self.protocol.datagramReceived(krpc.encode_query(b"tx", b"ping", {b"id": PEER_ID}), OTHER)
        self.assertEqual(len(self.transport.written), 6)

    def test_non_krpc_datagrams_over_their_own_per_ip_rate_are_dropped(self):
        chat_limiter = PerIPRateLimiter(self.clock.seconds, rate=10, burst=3)
        protocol = KRPCProtocol(self.clock, self.handler, self.limiter, chat_limiter)
        protocol.makeConnection(FakeTransport())
        received = []
        protocol.datagram_handler = lambda data, address: received.append(address)
        for _ in range(10):
            protocol.datagramReceived(b"\x01chat", PEER)
        protocol.datagramReceived(b"\x01chat", OTHER)
        self.assertEqual(received, [PEER] * 3 + [OTHER])
        self.assertEqual(protocol.stats.rate_limited, 7)

    def test_datagrams_the_owner_vouches_for_skip_the_per_ip_budget_and_no_others_do(self):
        chat_limiter = PerIPRateLimiter(self.clock.seconds, rate=10, burst=3)
        protocol = KRPCProtocol(self.clock, self.handler, self.limiter, chat_limiter)
        protocol.makeConnection(FakeTransport())
        received = []
        protocol.datagram_handler = lambda data, address: received.append(data)
        protocol.datagram_exempt = lambda data, address: data == b"\x03ours" and address == PEER
        for _ in range(10):
            protocol.datagramReceived(b"\x03ours", PEER)
            protocol.datagramReceived(b"\x03ours", OTHER)
        self.assertEqual(received, [b"\x03ours"] * 13)  # PEER's ten, OTHER's burst of three
        self.assertEqual(protocol.stats.rate_limited, 7)

    def test_stop_fails_pending_queries_and_closes_the_socket(self):
        d = self.protocol.query(PEER, b"ping", {b"id": OWN_ID}, timeout=2)
        self.successResultOf(self.protocol.stop())
        self.failureResultOf(d, NodeStopped)
        self.assertTrue(self.transport.stopped)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_queries_after_stop_fail_at_once_and_send_nothing(self):
        self.protocol.stop()
        d = self.protocol.query(PEER, b"ping", {b"id": OWN_ID}, timeout=2)
        self.failureResultOf(d, NodeStopped)
        self.assertEqual(self.transport.written, [])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_send_errors_are_treated_as_loss(self):
        def unreachable(data, address):
            raise OSError(101, "Network is unreachable")

        self.transport.write = unreachable
        d = self.protocol.query(PEER, b"ping", {b"id": OWN_ID}, timeout=2)
        self.clock.advance(2)
        self.failureResultOf(d, QueryTimeout)
