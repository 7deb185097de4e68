"""kademlia.sim: delivery on a virtual clock, injected faults, determinism by seed."""

import ipaddress
import tracemalloc

import pytest
from twisted.internet.error import CannotListenError, MessageLengthError
from twisted.internet.protocol import DatagramProtocol
from twisted.internet.task import Clock

from kademlia.sim import MAX_DATAGRAM, SimClock, SimNetwork

A = ("10.0.0.1", 6881)
B = ("10.0.0.2", 6881)
C = ("10.0.0.3", 6881)
D = ("10.0.0.4", 6881)


class Recorder(DatagramProtocol):
    noisy = False

    def __init__(self, clock):
        self.clock = clock
        self.received = []
        self.started = self.stopped = 0

    def startProtocol(self):
        self.started += 1

    def stopProtocol(self):
        self.stopped += 1

    def datagramReceived(self, data, addr):
        self.received.append((self.clock.seconds(), data, addr))


def make_network(addresses=(A, B, C, D), clock=None, **options):
    clock = clock or Clock()
    network = SimNetwork(clock, **options)
    nodes = {address: Recorder(clock) for address in addresses}
    for address, protocol in nodes.items():
        network.listen(address, protocol)
    return clock, network, nodes


def send(nodes, src, dst, data=b"x"):
    nodes[src].transport.write(data, dst)


def payloads(protocol):
    return [data for _, data, _ in protocol.received]


# -- endpoints -----------------------------------------------------------------

def test_listen_connects_the_protocol_and_reports_its_address():
    clock, network, nodes = make_network()
    transport = nodes[A].transport
    assert nodes[A].started == 1
    host = transport.getHost()
    assert (host.type, host.host, host.port) == ("UDP", "10.0.0.1", 6881)
    assert network.is_listening(A)


def test_listening_twice_on_one_address_raises_cannot_listen():
    clock, network, nodes = make_network()
    with pytest.raises(CannotListenError):
        network.listen(A, Recorder(clock))


def test_non_ipv4_host_is_refused():
    with pytest.raises(ValueError):
        SimNetwork(Clock()).listen(("sim-node", 1), Recorder(Clock()))


def test_next_address_gives_unique_unused_addresses_in_10_slash_8():
    clock, network, nodes = make_network(addresses=[("10.0.0.2", 6881)])
    addresses = [network.next_address() for _ in range(1000)]
    assert len(set(addresses)) == 1000
    assert ("10.0.0.2", 6881) not in addresses
    for host, port in addresses:
        assert ipaddress.IPv4Address(host) in ipaddress.IPv4Network("10.0.0.0/8")
        assert 0 < port < 65536


def test_stop_listening_stops_the_protocol_and_fires_once():
    clock, network, nodes = make_network()
    transport = nodes[A].transport
    d = transport.stopListening()
    assert d.called
    assert nodes[A].stopped == 1
    assert nodes[A].transport is None
    assert not network.is_listening(A)
    assert transport.stopListening() is None


def test_datagram_in_flight_to_a_stopped_port_is_dropped_and_address_is_reusable():
    clock, network, nodes = make_network(latency=0.02)
    send(nodes, B, A)
    nodes[A].transport.stopListening()
    clock.advance(1)
    assert network.drops["no_listener"] == 1
    newcomer = Recorder(clock)
    network.listen(A, newcomer)
    send(nodes, B, A, b"hello again")
    clock.advance(1)
    assert payloads(newcomer) == [b"hello again"]


def test_write_after_stop_listening_raises_os_error():
    clock, network, nodes = make_network()
    transport = nodes[A].transport
    transport.stopListening()
    with pytest.raises(OSError):
        transport.write(b"x", B)


def test_oversized_or_non_bytes_datagrams_are_refused_like_a_socket_would():
    clock, network, nodes = make_network()
    with pytest.raises(MessageLengthError):
        send(nodes, A, B, b"x" * (MAX_DATAGRAM + 1))
    with pytest.raises(TypeError):
        send(nodes, A, B, "text")


def test_protocol_exception_propagates_out_of_clock_advance():
    clock, network, nodes = make_network(latency=0.01)

    def explode(data, addr):
        raise RuntimeError("bug in node")

    nodes[B].datagramReceived = explode
    send(nodes, A, B)
    with pytest.raises(RuntimeError):
        clock.advance(1)


# -- latency -------------------------------------------------------------------

def test_datagram_arrives_after_the_latency_and_not_before():
    clock, network, nodes = make_network(latency=0.03)
    send(nodes, A, B, b"ping")
    clock.advance(0.029)
    assert nodes[B].received == []
    clock.advance(0.001)
    assert nodes[B].received == [(pytest.approx(0.03), b"ping", A)]
    assert (network.sent, network.delivered, network.dropped) == (1, 1, 0)


def test_default_latency_is_fixed_per_link_symmetric_and_10_to_50_ms():
    clock, network, nodes = make_network(clock=SimClock())

    def one_way(src, dst):
        sent_at = clock.seconds()
        send(nodes, src, dst)
        clock.advance(1)
        return nodes[dst].received[-1][0] - sent_at

    a_to_b = one_way(A, B)
    assert one_way(A, B) == pytest.approx(a_to_b)
    assert one_way(B, A) == pytest.approx(a_to_b)
    a_to_c, c_to_d = one_way(A, C), one_way(C, D)
    assert a_to_c != pytest.approx(a_to_b)
    for latency in (a_to_b, a_to_c, c_to_d):
        assert 0.01 <= latency <= 0.05


def test_callable_latency_receives_src_dst_and_the_seeded_rng():
    seen = []

    def latency(src, dst, rng):
        seen.append((src, dst, rng))
        return 0.5

    clock, network, nodes = make_network(latency=latency)
    send(nodes, A, B)
    clock.advance(0.49)
    assert nodes[B].received == []
    clock.advance(0.01)
    assert len(nodes[B].received) == 1
    assert seen == [(A, B, network.rng)]


def test_same_link_preserves_order():
    clock, network, nodes = make_network()
    for i in range(20):
        send(nodes, A, B, b"%d" % i)
    clock.advance(1)
    assert payloads(nodes[B]) == [b"%d" % i for i in range(20)]


# -- loss ----------------------------------------------------------------------

def test_loss_rate_is_close_to_the_configured_probability():
    clock, network, nodes = make_network(loss=0.3, seed=7, clock=SimClock())
    for _ in range(10000):
        send(nodes, A, B)
    clock.advance(1)
    assert 0.28 < network.drops["loss"] / 10000 < 0.32
    assert network.delivered + network.dropped == network.sent == 10000


def test_loss_is_deterministic_for_a_seed():
    counts = []
    for seed in (3, 3, 4):
        clock, network, nodes = make_network(loss=0.5, seed=seed)
        for i in range(200):
            send(nodes, A, B, b"%d" % i)
        clock.advance(1)
        counts.append(payloads(nodes[B]))
    assert counts[0] == counts[1]
    assert counts[0] != counts[2]


def test_per_node_loss_overrides_the_global_rate_for_its_traffic_both_ways():
    clock, network, nodes = make_network(loss=0.0)
    network.set_loss(C, 1.0)
    send(nodes, A, C)
    send(nodes, C, A)
    send(nodes, A, B)
    clock.advance(1)
    assert nodes[C].received == [] and payloads(nodes[A]) == []
    assert payloads(nodes[B]) == [b"x"]
    network.set_loss(C, None)
    send(nodes, A, C)
    clock.advance(1)
    assert payloads(nodes[C]) == [b"x"]


# -- partitions, blocks, dead machines -------------------------------------------

def test_partition_separates_groups_and_heal_reconnects_them():
    clock, network, nodes = make_network()
    network.partition([{A, B}, {C}])
    send(nodes, A, B, b"same side")
    send(nodes, A, C, b"across")
    send(nodes, C, A, b"across back")
    clock.advance(1)
    assert payloads(nodes[B]) == [b"same side"]
    assert nodes[C].received == [] and nodes[A].received == []
    assert network.drops["partition"] == 2
    network.heal()
    send(nodes, A, C, b"healed")
    clock.advance(1)
    assert payloads(nodes[C]) == [b"healed"]


def test_addresses_outside_every_partition_group_form_their_own_group():
    clock, network, nodes = make_network()
    network.partition([{A, B}])
    send(nodes, C, D, b"rest to rest")
    send(nodes, C, A, b"rest to group")
    clock.advance(1)
    assert payloads(nodes[D]) == [b"rest to rest"]
    assert nodes[A].received == []


def test_block_is_one_way_until_unblocked():
    clock, network, nodes = make_network()
    network.block(A, B)
    send(nodes, A, B, b"blocked")
    send(nodes, B, A, b"allowed")
    clock.advance(1)
    assert nodes[B].received == []
    assert payloads(nodes[A]) == [b"allowed"]
    network.unblock(A, B)
    send(nodes, A, B, b"unblocked")
    clock.advance(1)
    assert payloads(nodes[B]) == [b"unblocked"]


def test_killed_node_neither_sends_nor_receives_and_writes_do_not_raise():
    clock, network, nodes = make_network()
    network.kill(B)
    send(nodes, A, B)
    send(nodes, B, A)
    clock.advance(1)
    assert nodes[A].received == [] and nodes[B].received == []
    assert network.drops["dead"] == 2
    network.revive(B)
    send(nodes, A, B)
    clock.advance(1)
    assert payloads(nodes[B]) == [b"x"]


def test_datagram_in_flight_to_a_node_that_dies_is_lost():
    clock, network, nodes = make_network(latency=0.05)
    send(nodes, A, B)
    clock.advance(0.01)
    network.kill(B)
    clock.advance(1)
    assert nodes[B].received == []
    assert network.drops["dead"] == 1


# -- bandwidth -------------------------------------------------------------------

def test_limited_uplink_sends_datagrams_one_after_another():
    clock, network, nodes = make_network(latency=0.01, clock=SimClock())
    network.set_bandwidth(A, 1000)  # bytes per second: 100 bytes take 0.1 s
    for _ in range(3):
        send(nodes, A, B, b"x" * 100)
    clock.advance(1)
    arrivals = [t for t, _, _ in nodes[B].received]
    assert arrivals == [pytest.approx(0.11), pytest.approx(0.21), pytest.approx(0.31)]


def test_uplink_limit_applies_to_the_sender_only():
    clock, network, nodes = make_network(latency=0.01)
    network.set_bandwidth(A, 1000)
    send(nodes, B, A, b"x" * 100)
    clock.advance(0.011)
    assert len(nodes[A].received) == 1


def test_idle_uplink_does_not_bank_credit():
    clock, network, nodes = make_network(latency=0.0)
    network.set_bandwidth(A, 1000)
    send(nodes, A, B, b"x" * 100)
    clock.advance(5)
    send(nodes, A, B, b"x" * 100)
    clock.advance(0.099)
    assert len(nodes[B].received) == 1
    clock.advance(0.002)
    assert len(nodes[B].received) == 2


def test_full_uplink_queue_drops_the_excess():
    clock, network, nodes = make_network(latency=0.01)
    network.set_bandwidth(A, 1000, queue_limit=250)
    for _ in range(4):
        send(nodes, A, B, b"x" * 100)
    clock.advance(1)
    assert len(nodes[B].received) == 2
    assert network.drops["queue_full"] == 2


def test_removing_the_bandwidth_limit_restores_immediate_sending():
    clock, network, nodes = make_network(latency=0.01)
    network.set_bandwidth(A, 10)
    network.set_bandwidth(A, None)
    send(nodes, A, B, b"x" * 100)
    clock.advance(0.01)
    assert len(nodes[B].received) == 1


# -- determinism and scale ---------------------------------------------------------

def _chatty_run(seed, clock_type):
    """Every node sends to every other through random latency and 20% loss."""
    clock = clock_type()
    network = SimNetwork(clock, seed=seed, loss=0.2,
                         latency=lambda src, dst, rng: rng.uniform(0.001, 0.2))
    addresses = [network.next_address() for _ in range(12)]
    log = []
    senders = []
    for address in addresses:
        protocol = Recorder(clock)
        protocol.datagramReceived = (
            lambda data, src, me=address: log.append((clock.seconds(), src, me, data)))
        network.listen(address, protocol)
        senders.append(protocol.transport)
    for round_ in range(5):
        for transport in senders:
            for dst in addresses:
                if dst != transport.address:
                    transport.write(b"%d" % round_, dst)
        clock.advance(0.05)
    clock.advance(1)
    return log


@pytest.mark.parametrize("clock_type", [Clock, SimClock])
def test_same_seed_gives_identical_delivery_order_and_times(clock_type):
    first, second = _chatty_run(11, clock_type), _chatty_run(11, clock_type)
    assert len(first) > 100
    assert first == second
    assert first != _chatty_run(12, clock_type)


def test_ten_thousand_endpoints_fit_in_ten_megabytes():
    clock = Clock()
    network = SimNetwork(clock)
    protocols = [Recorder(clock) for _ in range(10000)]
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for protocol in protocols:
        network.listen(network.next_address(), protocol)
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    # Measured ~600 bytes per endpoint, the protocol's transport attribute included.
    assert used < 10000 * 1000, used


def test_delivered_datagrams_leave_no_state_behind():
    clock, network, nodes = make_network(latency=0.01)
    for _ in range(100):
        send(nodes, A, B)
    assert len(clock.getDelayedCalls()) == 100
    clock.advance(1)
    assert clock.getDelayedCalls() == []


# -- SimClock ----------------------------------------------------------------------

def test_sim_clock_runs_each_call_at_its_own_time_in_order():
    clock = SimClock()
    seen = []
    for delay in (0.3, 0.1, 0.2, 0.1):
        clock.callLater(delay, lambda d=delay: seen.append((d, clock.seconds())))
    clock.advance(10)
    assert seen == [(0.1, 0.1), (0.1, 0.1), (0.2, 0.2), (0.3, 0.3)]
    assert clock.seconds() == 10


def test_sim_clock_runs_calls_scheduled_by_calls_within_the_same_advance():
    clock = SimClock()
    seen = []
    clock.callLater(1, lambda: clock.callLater(0.5, lambda: seen.append(clock.seconds())))
    clock.advance(1.4)
    assert seen == []
    clock.advance(0.1)
    assert seen == [1.5]


def test_sim_clock_cancelled_calls_do_not_run_and_are_not_pending():
    clock = SimClock()
    seen = []
    kept = clock.callLater(1, seen.append, "kept")
    dropped = clock.callLater(1, seen.append, "dropped")
    dropped.cancel()
    assert clock.getDelayedCalls() == [kept]
    clock.advance(2)
    assert seen == ["kept"]
    assert clock.getDelayedCalls() == []


def test_sim_clock_honours_reset_earlier_and_later_and_delay():
    clock = SimClock()
    seen = []
    earlier = clock.callLater(5, lambda: seen.append(("earlier", clock.seconds())))
    later = clock.callLater(1, lambda: seen.append(("later", clock.seconds())))
    delayed = clock.callLater(2, lambda: seen.append(("delayed", clock.seconds())))
    earlier.reset(0.5)
    later.reset(3)
    delayed.delay(2)
    clock.advance(10)
    assert seen == [("earlier", 0.5), ("later", 3), ("delayed", 4)]


def test_sim_clock_sweeps_cancelled_calls_so_the_heap_stays_small():
    clock = SimClock()
    clock.callLater(100, lambda: None)
    for _ in range(10 * SimClock.COMPACT_AFTER):
        clock.callLater(1, lambda: None).cancel()
    assert len(clock._heap) <= SimClock.COMPACT_AFTER + 2
    assert len(clock.getDelayedCalls()) == 1


def test_sim_clock_drives_a_looping_call():
    from twisted.internet.task import LoopingCall
    clock = SimClock()
    ticks = []
    loop = LoopingCall(lambda: ticks.append(clock.seconds()))
    loop.clock = clock
    loop.start(2, now=False)
    clock.advance(7)
    loop.stop()
    assert ticks == [2, 4, 6]
    assert clock.getDelayedCalls() == []
