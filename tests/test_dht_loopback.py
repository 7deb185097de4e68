"""The DHT on real UDP sockets over loopback: a swarm with dedicated servers in
their own processes, BEP 44 refusals with their KRPC codes, and hostile datagrams."""

import random
import socket

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet import defer, reactor, task
from twisted.trial import unittest

from kademlia import bencode, krpc
from kademlia.items import (
    ERROR_CAS_MISMATCH,
    ERROR_INVALID_SIGNATURE,
    ERROR_SALT_TOO_BIG,
    ERROR_SEQ_LESS_THAN_CURRENT,
    ERROR_V_TOO_BIG,
)
from kademlia.node import DHTNode
from kademlia.settings import DHTSettings
from tests.dht_helpers import ServerProcess, Signer, forged, loopback_address


class LoopbackNodes:
    """In-process DHTNodes, each on its own 127.0.x.y address, stopped by `stop_all`."""

    def __init__(self, settings=None, first_index=0):
        self.settings = settings or DHTSettings()
        self.nodes = []
        self._next = first_index

    def start(self, count=1, **options):
        started = []
        for _ in range(count):
            node = DHTNode(reactor, settings=options.get("settings", self.settings))
            node.listen(0, loopback_address(self._next))
            self._next += 1
            self.nodes.append(node)
            started.append(node)
        return started

    def stop_all(self):
        return defer.gatherResults([n.stop() for n in self.nodes])


def put_args(token, item, **overrides):
    args = {b"token": token, b"k": item.k, b"seq": item.seq, b"sig": item.sig, b"v": item.v}
    if item.salt:
        args[b"salt"] = item.salt
    args.update({key.encode(): value for key, value in overrides.items()})
    return args


class SwarmTests(unittest.TestCase):
    """33 nodes: three dedicated_server.py processes and 30 in-process nodes."""

    timeout = 60
    SERVERS = 3
    IN_PROCESS = 30

    @defer.inlineCallbacks
    def setUp(self):
        self.servers = []
        first = ServerProcess.spawn(reactor, "-p", "0", "--host", "127.0.9.1")
        self.servers.append(first)
        self.addCleanup(self._stop_servers)
        self.seed = yield first.started
        for n in range(2, self.SERVERS + 1):
            server = ServerProcess.spawn(
                reactor, "-p", "0", "--host", f"127.0.9.{n}", "-b", "%s:%d" % self.seed
            )
            self.servers.append(server)
        self.server_addresses = [self.seed] + (yield defer.gatherResults([s.started for s in self.servers[1:]]))
        self.local = LoopbackNodes()
        self.addCleanup(self.local.stop_all)
        nodes = self.local.start(self.IN_PROCESS)
        sizes = yield defer.gatherResults([n.bootstrap([self.seed]) for n in nodes])
        self.assertTrue(min(sizes) >= 8, f"routing table sizes after bootstrap: {sizes}")

    def _stop_servers(self):
        return defer.gatherResults([s.terminate() for s in self.servers])

    @defer.inlineCallbacks
    def raw_get(self, client, address, target):
        response = yield client.query_contact(None, address, b"get", {b"target": target})
        return response.values

    @defer.inlineCallbacks
    def test_a_put_is_got_by_every_node_and_a_higher_seq_replaces_it(self):
        nodes = self.local.nodes
        signer = Signer(1)
        first = signer.item(b"first", seq=1)
        accepted = yield nodes[0].put(first)
        self.assertEqual(accepted, 8)
        got = yield defer.gatherResults([n.get(first.target) for n in nodes[1:]])
        self.assertEqual(got, [first] * (len(nodes) - 1))
        # The server processes answer a raw BEP 44 get like any node: those holding it return it.
        answers = yield defer.gatherResults([self.raw_get(nodes[0], a, first.target) for a in self.server_addresses])
        for values in answers:
            self.assertTrue(values.get(b"v") in (None, b"first"))
        second = signer.item(b"second", seq=2)
        accepted = yield nodes[5].put(second)
        self.assertEqual(accepted, 8)  # every replica took the higher seq
        got = yield defer.gatherResults([n.get(first.target) for n in nodes])
        self.assertEqual(got, [second] * len(nodes))

    @defer.inlineCallbacks
    def test_items_stored_on_the_server_processes_are_found(self):
        # Put many items: some land on the servers' stores. Every one is found from everywhere.
        items = [Signer(100 + n).item(b"item %d" % n) for n in range(10)]
        nodes = self.local.nodes
        yield defer.gatherResults([nodes[n].put(item) for n, item in enumerate(items)])
        on_servers = 0
        for item in items:
            answers = yield defer.gatherResults(
                [self.raw_get(nodes[0], a, item.target) for a in self.server_addresses]
            )
            on_servers += sum(1 for values in answers if values.get(b"v") == item.v)
        self.assertTrue(on_servers > 0, "no item reached a server process")
        got = yield defer.gatherResults([nodes[-1 - n].get(item.target) for n, item in enumerate(items)])
        self.assertEqual(got, items)


class RefusalTests(unittest.TestCase):
    """Raw KRPC puts from one node to another, each refused with its BEP 44 / BEP 5 code."""

    timeout = 20

    @defer.inlineCallbacks
    def setUp(self):
        self.local = LoopbackNodes(first_index=500)
        self.addCleanup(self.local.stop_all)
        self.client, self.server = self.local.start(2)
        self.signer = Signer(7)
        self.held = self.signer.item(b"held", seq=10)
        response = yield self.client.query_contact(
            None, self.server.address, b"get", {b"target": self.held.target}
        )
        self.token = response.values[b"token"]
        yield self.put(put_args(self.token, self.held))

    def put(self, args):
        return self.client.query_contact(None, self.server.address, b"put", args)

    @defer.inlineCallbacks
    def assert_refused(self, args, code):
        failure = yield self.assertFailure(self.put(args), krpc.KRPCError)
        self.assertEqual(failure.code, code, failure.message)
        self.assertEqual(self.server.store.get(self.held.target)[0], self.held)

    def test_a_lower_seq_is_refused_with_302(self):
        return self.assert_refused(put_args(self.token, self.signer.item(b"older", seq=9)), ERROR_SEQ_LESS_THAN_CURRENT)

    def test_the_same_seq_with_another_value_is_refused_with_302(self):
        return self.assert_refused(put_args(self.token, self.signer.item(b"other", seq=10)), ERROR_SEQ_LESS_THAN_CURRENT)

    def test_a_bad_signature_is_refused_with_206(self):
        return self.assert_refused(put_args(self.token, forged(self.held, seq=11, v=b"forged")), ERROR_INVALID_SIGNATURE)

    def test_a_wrong_cas_is_refused_with_301(self):
        args = put_args(self.token, self.signer.item(b"newer", seq=11), cas=9)
        return self.assert_refused(args, ERROR_CAS_MISMATCH)

    @defer.inlineCallbacks
    def test_a_matching_cas_is_accepted(self):
        newer = self.signer.item(b"newer", seq=11)
        yield self.put(put_args(self.token, newer, cas=10))
        self.assertEqual(self.server.store.get(newer.target)[0], newer)

    def test_an_oversized_v_is_refused_with_205(self):
        return self.assert_refused(put_args(self.token, self.held, seq=11, v=b"x" * 1000), ERROR_V_TOO_BIG)

    def test_an_oversized_salt_is_refused_with_207(self):
        return self.assert_refused(put_args(self.token, self.held, salt=b"s" * 65), ERROR_SALT_TOO_BIG)

    def test_a_missing_token_is_refused_with_203(self):
        args = put_args(self.token, self.signer.item(b"newer", seq=11))
        del args[b"token"]
        return self.assert_refused(args, krpc.PROTOCOL_ERROR)

    def test_a_wrong_token_is_refused_with_203(self):
        args = put_args(bytes(8), self.signer.item(b"newer", seq=11))
        return self.assert_refused(args, krpc.PROTOCOL_ERROR)

    @defer.inlineCallbacks
    def test_a_token_issued_to_another_ip_is_refused_with_203(self):
        (other,) = self.local.start(1)
        response = yield other.query_contact(None, self.server.address, b"get", {b"target": self.held.target})
        args = put_args(response.values[b"token"], self.signer.item(b"newer", seq=11))
        yield self.assert_refused(args, krpc.PROTOCOL_ERROR)

    def test_a_put_without_a_signature_is_refused_with_203(self):
        args = put_args(self.token, self.signer.item(b"newer", seq=11))
        del args[b"sig"]
        return self.assert_refused(args, krpc.PROTOCOL_ERROR)

    @defer.inlineCallbacks
    def test_an_unknown_method_is_answered_with_204(self):
        failure = yield self.assertFailure(
            self.client.query_contact(None, self.server.address, b"frobnicate", {}), krpc.KRPCError
        )
        self.assertEqual(failure.code, krpc.METHOD_UNKNOWN)


FUZZ_ID = b"F" * 20
ARG_KEYS = [b"id", b"target", b"info_hash", b"token", b"k", b"seq", b"sig", b"v", b"salt", b"cas", b"ttl", b"ro"]
leaf = st.integers(-(2**64), 2**64) | st.binary(max_size=40) | st.just(FUZZ_ID)
bencodable = st.recursive(
    leaf,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.binary(max_size=6), children, max_size=4),
    max_leaves=5,
)
krpc_shaped = st.fixed_dictionaries(
    {
        b"t": st.binary(min_size=1, max_size=4),
        b"y": st.sampled_from([b"q", b"r", b"e"]),
        b"q": st.sampled_from([b"ping", b"find_node", b"get_peers", b"get", b"put", b"x"]) | st.binary(max_size=8),
        b"a": st.dictionaries(st.sampled_from(ARG_KEYS), bencodable, max_size=8).map(
            lambda args: {b"id": FUZZ_ID, **args}
        ),
    },
    optional={b"r": bencodable, b"e": bencodable, b"ip": st.binary(max_size=8)},
)


def generated_datagrams(count):
    """Hypothesis-made datagrams: raw bytes and KRPC-shaped dicts with wrongly typed fields."""
    found = []

    @settings(max_examples=count, database=None, derandomize=True, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(st.one_of(st.binary(max_size=200).map(lambda b: b"d" + b), krpc_shaped.map(bencode.encode)))
    def collect(data):
        found.append(data)

    collect()
    return found


def mutated_datagrams(valid, count, seed):
    """Valid KRPC messages with bits flipped, bytes replaced, cut, duplicated or spliced."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        data = bytearray(rng.choice(valid))
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(data) or 1)
            kind = rng.randrange(6)
            if kind == 0 and data:
                data[i] ^= 1 << rng.randrange(8)
            elif kind == 1 and data:
                data[i] = rng.randrange(256)
            elif kind == 2:
                del data[i : i + rng.randint(1, 8)]
            elif kind == 3:
                data[i:i] = data[i : i + rng.randint(1, 30)]
            elif kind == 4:
                data[i:i] = bytes([rng.choice(b"0123456789:ield")])  # bencode syntax characters
            else:
                data = data[:i] + bytearray(rng.choice(valid))[i:]
        out.append(bytes(data))
    return out


WRONG_VALUES = [0, -1, 2**63, 2**64 + 1, b"", b"x", b"y" * 19, b"z" * 21, b"w" * 65, b"v" * 1001, [], [1, b"a"], {}, {b"a": 1}]


def restructured_datagrams(valid, count, seed):
    """Valid KRPC messages, still well-formed bencode, with fields dropped or of the wrong type:
    these get past the decoder and reach the query handlers."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        message = bencode.decode(rng.choice(valid))
        for _ in range(rng.randint(1, 3)):
            # Mostly the query arguments, and mostly not the sender id: past the decoder.
            where = message[b"a"] if isinstance(message.get(b"a"), dict) and rng.random() < 0.9 else message
            keys = sorted(k for k in where if k != b"id" or rng.random() < 0.1)
            if not keys:
                break
            key = rng.choice(keys)
            if rng.random() < 0.2:
                del where[key]
            else:
                where[key] = rng.choice(WRONG_VALUES)
        out.append(bencode.encode(message))
    return out


class HostileInputTests(unittest.TestCase):
    timeout = 60

    def setUp(self):
        self.local = LoopbackNodes(first_index=700)
        self.addCleanup(self.local.stop_all)
        # No rate limit here: every hostile datagram must reach the decoder and handlers.
        unlimited = DHTSettings(queries_per_ip_per_second=1e9, query_burst_per_ip=10**9)
        (self.target,) = self.local.start(1, settings=unlimited)
        (self.client,) = self.local.start(1)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((loopback_address(750), 0))
        self.addCleanup(self.sock.close)

    def valid_messages(self):
        item = Signer(3).item([b"a list", 7, {b"k": b"v"}], seq=5, salt=b"salt")
        args = {b"id": FUZZ_ID, b"token": b"t" * 8, b"k": item.k, b"seq": item.seq, b"sig": item.sig,
                b"v": item.v, b"salt": item.salt, b"cas": 4, b"ttl": 60}
        return [
            krpc.encode_query(b"aa", b"ping", {b"id": FUZZ_ID}),
            krpc.encode_query(b"ab", b"find_node", {b"id": FUZZ_ID, b"target": b"T" * 20}),
            krpc.encode_query(b"ac", b"get", {b"id": FUZZ_ID, b"target": item.target, b"seq": 1}),
            krpc.encode_query(b"ad", b"get_peers", {b"id": FUZZ_ID, b"info_hash": b"I" * 20}),
            krpc.encode_query(b"ae", b"put", args),
            krpc.encode_response(b"af", {b"id": FUZZ_ID, b"nodes": b"N" * 78, b"token": b"x"}, ("127.0.0.1", 9)),
            krpc.encode_error(b"ag", 201, "generic"),
        ]

    @defer.inlineCallbacks
    def send_all(self, datagrams, batch=200):
        for start in range(0, len(datagrams), batch):
            for data in datagrams[start : start + batch]:
                self.sock.sendto(data, self.target.address)
            yield task.deferLater(reactor, 0.005, lambda: None)  # let the node read them

    @defer.inlineCallbacks
    def until_quiet(self, node):
        """Wait until the node has read everything sent to it."""
        last = -1
        while node.stats["received"] != last:
            last = node.stats["received"]
            yield task.deferLater(reactor, 0.02, lambda: None)

    @defer.inlineCallbacks
    def test_the_node_survives_thousands_of_malformed_datagrams_and_still_answers(self):
        valid = self.valid_messages()
        queries = [m for m in valid if bencode.decode(m)[b"y"] == b"q"]
        datagrams = (
            generated_datagrams(600)
            + mutated_datagrams(valid, 2500, seed=1)
            + restructured_datagrams(queries, 2500, seed=2)
        )
        yield self.send_all(datagrams)
        yield self.until_quiet(self.target)
        stats = self.target.stats
        self.assertTrue(stats["received"] >= 0.95 * len(datagrams), stats)  # loopback may drop a few
        self.assertTrue(stats["malformed"] > 1000, stats)
        self.assertTrue(stats["queries"] > 2000, stats)  # many reached the handlers
        response = yield self.client.ping(self.target.address)
        self.assertEqual(response.sender_id, self.target.node_id)

    @defer.inlineCallbacks
    def test_a_flood_from_one_address_is_rate_limited_and_others_are_still_served(self):
        limited = DHTSettings(queries_per_ip_per_second=100, query_burst_per_ip=200)
        (target,) = self.local.start(1, settings=limited)
        ping = krpc.encode_query(b"aa", b"ping", {b"id": FUZZ_ID})
        for _ in range(5):
            for _ in range(400):
                self.sock.sendto(ping, target.address)
            yield task.deferLater(reactor, 0.005, lambda: None)
        yield task.deferLater(reactor, 0.05, lambda: None)
        self.assertTrue(target.stats["rate_limited"] >= 1000, target.stats)
        response = yield self.client.ping(target.address)
        self.assertEqual(response.sender_id, target.node_id)
