"""The Mainline network mode (issue 14): which network a client rides, the routers,
query pacing per IP, puts that insist on a quorum, BEP 42 ids that follow the
voted address (with a clock, and on real sockets), BEP 43 read-only queries."""

import pytest
from twisted.internet import defer, protocol, reactor, task
from twisted.internet.task import Clock
from twisted.trial import unittest

from config import Config
from kadchat import network_mode
from kadchat.addrvote import AddressVotes, IdRenewal
from kadchat.errors import UserError
from kadchat.quorum import QuorumDHT
from kademlia import bencode, krpc, nodeid
from kademlia.node import DHTNode
from kademlia.pacing import QueryPacer
from kademlia.protocol import KRPCProtocol, TooManyQueries


# -- which network -----------------------------------------------------------------

def test_no_bootstrap_node_means_mainline_with_hourly_epochs():
    config = network_mode.resolve(Config(), [])
    assert (config.network, config.epoch_seconds) == ("mainline", 3600)
    settings = network_mode.dht_settings(config)
    assert (settings.node_id_check, settings.pace_interval) == ("public", network_mode.PACE_INTERVAL)


def test_a_bootstrap_node_or_file_entry_keeps_the_private_swarm():
    for config, entries in ((Config(bootstrap_host="127.0.0.1", bootstrap_port=6881), []),
                            (Config(), [("127.0.0.1", 6881)])):
        resolved = network_mode.resolve(config, entries)
        assert (resolved.network, resolved.epoch_seconds) == ("private", 300)
        assert network_mode.dht_settings(resolved).node_id_check == "off"
        assert network_mode.join_addresses(resolved, entries, environ={}) == [("127.0.0.1", 6881)]


def test_a_client_that_joined_a_private_swarm_before_rejoins_it_and_each_network_has_its_table():
    private = network_mode.resolve(Config(), [], joined_private=True)
    assert private.network == "private" and network_mode.state_file(private) == "dht-state.json"
    mainline = network_mode.resolve(Config(), [])
    assert network_mode.state_file(mainline) == "dht-state-mainline.json"
    assert network_mode.resolve(Config(network="mainline"), [], joined_private=True).network == "mainline"


def test_the_service_rides_mainline_only_without_bootstrap_nodes_or_a_saved_private_swarm(tmp_path):
    from kadchat.identity import load_or_create
    from kadchat.service import ChatService
    identity = load_or_create(str(tmp_path), "alice")
    assert ChatService(Clock(), Config(data_dir=str(tmp_path)), identity).config.network == "mainline"
    (tmp_path / "dht-state.json").write_text('{"contacts": [["' + "ab" * 20 + '", "198.51.100.7", 6881]]}')
    service = ChatService(Clock(), Config(data_dir=str(tmp_path)), identity)
    assert (service.config.network, service.config.epoch_seconds) == ("private", 300)


def test_mainline_joins_through_the_given_nodes_then_the_routers():
    config = network_mode.resolve(Config(network="mainline", bootstrap_host="127.0.0.1", bootstrap_port=7),
                                  [("127.0.0.2", 8)])
    assert config.epoch_seconds == 3600
    assert network_mode.join_addresses(config, [("127.0.0.2", 8)], environ={}) == \
        [("127.0.0.1", 7), ("127.0.0.2", 8), *network_mode.ROUTERS]
    assert ("router.bittorrent.com", 6881) in network_mode.ROUTERS
    assert ("dht.libtorrent.org", 25401) in network_mode.ROUTERS


def test_the_router_list_is_replaced_by_the_environment():
    env = {network_mode.ROUTERS_ENV: "127.0.0.1:6881, 127.0.0.2:25401"}
    assert network_mode.routers(env) == [("127.0.0.1", 6881), ("127.0.0.2", 25401)]
    assert network_mode.routers({network_mode.ROUTERS_ENV: ""}) == []
    for bad in ("router.example", "127.0.0.1:0", ":6881", "127.0.0.1:x"):
        with pytest.raises(UserError, match="KADCHAT_MAINLINE_ROUTERS: expected host:port"):
            network_mode.routers({network_mode.ROUTERS_ENV: bad})
    import os
    assert network_mode.routers() == [] == network_mode.routers(os.environ)  # conftest: tests reach none


def test_an_explicit_epoch_wins_over_the_networks():
    assert network_mode.resolve(Config(epoch_seconds=600), []).epoch_seconds == 600


def test_publicly_reachable_only_without_a_nat_in_between():
    assert network_mode.publicly_reachable(("198.51.100.7", 7000), ("198.51.100.7", 7000))
    assert not network_mode.publicly_reachable(("198.51.100.7", 7000), ("192.168.1.5", 7000))
    assert not network_mode.publicly_reachable(None, ("192.168.1.5", 7000))


# -- pacing ------------------------------------------------------------------------

def test_queries_to_one_ip_are_spaced_and_others_are_not_held_up():
    clock = Clock()
    pacer = QueryPacer(clock, 0.3, max_queued_per_ip=3)
    sent = []
    for n in range(4):
        assert pacer.run("203.0.113.1", lambda n=n: sent.append((clock.seconds(), "a", n)))
    assert pacer.run("203.0.113.2", lambda: sent.append((clock.seconds(), "b", 0)))
    assert not pacer.run("203.0.113.1", lambda: sent.append("too many"))  # 3 already wait
    clock.pump([0.15] * 8)
    assert [(round(t, 1), who, n) for t, who, n in sent] == \
        [(0.0, "a", 0), (0.0, "b", 0), (0.3, "a", 1), (0.6, "a", 2), (0.9, "a", 3)]
    assert (pacer.delayed, pacer.refused) == (3, 1)


def test_a_paced_query_times_out_from_when_it_is_sent_and_a_full_queue_refuses_at_once():
    clock = Clock()
    writes = []

    class Transport:
        def write(self, data, address):
            writes.append((clock.seconds(), data))

    proto = KRPCProtocol(clock, None, pacer=QueryPacer(clock, 1.0, max_queued_per_ip=1))
    proto.transport = Transport()
    first = proto.query(("203.0.113.1", 1), b"ping", {b"id": b"x" * 20}, timeout=2.0)
    second = proto.query(("203.0.113.1", 1), b"ping", {b"id": b"x" * 20}, timeout=2.0)
    third = proto.query(("203.0.113.1", 1), b"ping", {b"id": b"x" * 20}, timeout=2.0)
    failures = []
    for d in (first, second, third):
        d.addErrback(lambda f: failures.append((clock.seconds(), f.type)))
    assert failures == [(0, TooManyQueries)]
    clock.advance(1.0)
    assert [t for t, _ in writes] == [0, 1.0]
    clock.advance(1.0)  # the first times out at 2.0, the second (sent at 1.0) not yet
    assert [t for t, _ in failures] == [0, 2.0]
    clock.advance(1.0)
    assert [t for t, _ in failures] == [0, 2.0, 3.0]


def test_read_only_queries_carry_bep43s_top_level_ro_key():
    clock = Clock()
    writes = []

    class Transport:
        def write(self, data, address):
            writes.append(bencode.decode(data))

    proto = KRPCProtocol(clock, None)
    proto.transport = Transport()
    proto.query(("203.0.113.1", 1), b"ping", {b"id": b"x" * 20}, timeout=1.0, min_size=200).addErrback(lambda _: 0)
    proto.read_only = True
    proto.query(("203.0.113.1", 1), b"ping", {b"id": b"x" * 20}, timeout=1.0, min_size=200).addErrback(lambda _: 0)
    clock.advance(2)
    assert b"ro" not in writes[0] and writes[1][b"ro"] == 1 and writes[1][b"a"][b"id"] == b"x" * 20
    assert len(bencode.encode(writes[1])) >= 200  # the padding survives


def test_a_read_only_node_answers_no_queries():
    clock = Clock()
    writes = []

    class Transport:
        def write(self, data, address):
            writes.append(data)

    node = DHTNode(clock)
    node.protocol.transport = Transport()
    ping = krpc.encode_query(b"tt", b"ping", {b"id": b"y" * 20})
    node.protocol.datagramReceived(ping, ("203.0.113.1", 1))
    assert len(writes) == 1
    node.protocol.read_only = True
    node.protocol.datagramReceived(ping, ("203.0.113.1", 1))
    assert len(writes) == 1


# -- quorum puts -------------------------------------------------------------------

class CountingNode:
    def __init__(self, accepted):
        self.accepted = list(accepted)
        self.widths = []

    def put(self, item, ttl=None, width=None):
        self.widths.append(width)
        return defer.succeed(self.accepted.pop(0))


def test_a_put_is_tried_again_until_eight_of_twenty_accept():
    clock = Clock()
    node = CountingNode([3, 9, 20])
    results = []
    QuorumDHT(clock, node, width=20, quorum=8, retry_after=5.0).put("item", ttl=60).addCallback(results.append)
    assert results == [] and node.widths == [20]
    clock.advance(5.0)
    assert results == [9] and node.widths == [20, 20]


def test_a_put_gives_up_after_its_attempts_and_stop_ends_the_wait():
    clock = Clock()
    node = CountingNode([1, 2, 3, 4])
    quorum = QuorumDHT(clock, node, attempts=3, retry_after=5.0)
    results = []
    quorum.put("item").addCallback(results.append)
    clock.advance(5.0)
    clock.advance(5.0)
    assert results == [3] and quorum.short == 1
    quorum.put("item").addCallback(results.append)
    quorum.stop()
    assert results == [3, 4] and not clock.getDelayedCalls()


# -- BEP 42 ids follow the voted address ----------------------------------------------

def _vote_from_three(votes, renewal, seen):
    for i in (1, 2, 3):
        votes.add((f"127.0.0.{i}", 6881), b"v" * 20, seen)
        renewal()


def test_a_bep42_id_fits_the_voted_address_from_the_first_vote_and_after_a_move():
    clock = Clock()
    node = DHTNode(clock, settings=network_mode.dht_settings(network_mode.resolve(Config(), [])), keep_id=False)
    votes = AddressVotes(clock.seconds)
    renewal = IdRenewal(node, votes, from_first=True)
    _vote_from_three(votes, renewal, ("198.51.100.7", 40000))
    assert nodeid.is_valid(node.node_id, "198.51.100.7")
    clock.advance(1)
    _vote_from_three(votes, renewal, ("203.0.113.9", 40000))  # a new network
    assert nodeid.is_valid(node.node_id, "203.0.113.9") and not nodeid.is_valid(node.node_id, "198.51.100.7")
    # A node that checks ids (node_id_check, on in Mainline mode) takes the new one at that address.
    accept = nodeid.acceptor("public")
    assert accept(node.node_id, ("203.0.113.9", 40000)) and not accept(node.node_id, ("198.51.100.7", 40000))


def test_an_id_that_fits_the_first_voted_address_already_is_kept():
    clock = Clock()
    fitting = nodeid.node_id_for("198.51.100.7", lambda n: bytes(n))
    node = DHTNode(clock, node_id=fitting)
    votes = AddressVotes(clock.seconds)
    _vote_from_three(votes, IdRenewal(node, votes, from_first=True), ("198.51.100.7", 40000))
    assert node.node_id == fitting


class Voter(protocol.DatagramProtocol):
    """A DHT node on loopback that answers pings and says it sees the sender at `self.seen`."""

    def __init__(self, seen):
        self.seen = seen

    def datagramReceived(self, data, address):
        query = krpc.decode_message(data)
        self.transport.write(krpc.encode_response(query.transaction, {b"id": b"v" * 20}, self.seen), address)


class RealSocketBep42Tests(unittest.TestCase):
    timeout = 20

    @defer.inlineCallbacks
    def test_after_a_change_of_address_the_id_is_valid_for_the_new_voted_address(self):
        node = DHTNode(reactor, settings=network_mode.dht_settings(network_mode.resolve(Config(), [])),
                       keep_id=False)
        node.listen(0, "127.0.0.1")
        self.addCleanup(node.stop)
        votes = AddressVotes(reactor.seconds)
        node.add_response_observer(votes.add)
        node.add_response_observer(IdRenewal(node, votes, from_first=True))
        voters = [Voter(("198.51.100.7", 40000)) for _ in range(3)]
        ports = []
        for n, voter in enumerate(voters):
            ports.append(reactor.listenUDP(0, voter, interface=f"127.0.14.{n + 1}"))
            self.addCleanup(ports[-1].stopListening)
        addresses = [(f"127.0.14.{n + 1}", p.getHost().port) for n, p in enumerate(ports)]
        yield defer.gatherResults([node.ping(a) for a in addresses])
        self.assertEqual(votes.external_address(), ("198.51.100.7", 40000))
        self.assertTrue(nodeid.is_valid(node.node_id, "198.51.100.7"))
        for voter in voters:
            voter.seen = ("203.0.113.9", 51000)  # the router gave us another address
        yield task.deferLater(reactor, 0.01, lambda: None)
        yield defer.gatherResults([node.ping(a) for a in addresses])
        self.assertEqual(votes.external_address(), ("203.0.113.9", 51000))
        self.assertTrue(nodeid.is_valid(node.node_id, "203.0.113.9"))
        self.assertFalse(nodeid.is_valid(node.node_id, "198.51.100.7"))
