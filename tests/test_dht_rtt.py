"""kademlia.rtt: adaptive per-contact timeouts (RFC 6298 smoothing)."""

import pytest
from twisted.internet.task import Clock

from kademlia.node import DHTNode
from kademlia.rtt import RTTEstimator, TimeoutPolicy


def test_unmeasured_contacts_get_the_initial_timeout_before_any_sample():
    policy = TimeoutPolicy(floor=0.05, ceiling=2.0, initial=1.0)
    assert policy.timeout_for(None) == 1.0
    assert policy.timeout_for(RTTEstimator()) == 1.0


def test_a_measured_contact_gets_srtt_plus_four_deviations():
    policy = TimeoutPolicy(floor=0.01, ceiling=2.0)
    contact = RTTEstimator()
    policy.sample(contact, 0.1)
    assert policy.timeout_for(contact) == pytest.approx(0.1 + 4 * 0.05)


def test_steady_rtt_shrinks_the_timeout_towards_the_floor():
    policy = TimeoutPolicy(floor=0.05, ceiling=2.0)
    contact = RTTEstimator()
    for _ in range(100):
        policy.sample(contact, 0.001)
    assert policy.timeout_for(contact) == 0.05


def test_the_timeout_never_exceeds_the_ceiling():
    policy = TimeoutPolicy(floor=0.05, ceiling=2.0)
    contact = RTTEstimator()
    policy.sample(contact, 5.0)
    assert policy.timeout_for(contact) == 2.0


def test_jitter_widens_the_timeout():
    steady, jittery = RTTEstimator(), RTTEstimator()
    policy = TimeoutPolicy(floor=0.001, ceiling=10)
    for n in range(50):
        policy.sample(steady, 0.1)
        policy.sample(jittery, 0.05 if n % 2 else 0.15)
    assert policy.timeout_for(jittery) > policy.timeout_for(steady) + 0.1


def test_unmeasured_contacts_use_the_overall_estimate():
    policy = TimeoutPolicy(floor=0.01, ceiling=2.0)
    for _ in range(50):
        policy.sample(RTTEstimator(), 0.02)
    overall = policy.overall.timeout(0.01, 2.0)
    assert policy.timeout_for(None) == pytest.approx(overall)
    assert policy.timeout_for(None) < 0.1


def test_a_contact_measured_while_the_swarm_was_slow_is_not_waited_on_longer_than_others():
    policy = TimeoutPolicy(floor=0.01, ceiling=2.0)
    measured_in_a_storm = RTTEstimator()
    for _ in range(5):
        policy.sample(measured_in_a_storm, 0.8)
    for _ in range(200):  # the swarm calmed down since
        policy.sample(RTTEstimator(), 0.002)
    assert measured_in_a_storm.timeout(0.01, 2.0) > 0.8
    assert policy.timeout_for(measured_in_a_storm) == policy.timeout_for(None) < 0.05


def test_a_slow_contact_does_not_slow_down_a_fast_one():
    policy = TimeoutPolicy(floor=0.01, ceiling=2.0)
    fast, slow = RTTEstimator(), RTTEstimator()
    for _ in range(20):
        policy.sample(fast, 0.01)
        policy.sample(slow, 0.5)
    assert policy.timeout_for(fast) < 0.05
    assert policy.timeout_for(slow) > 0.5


def test_jitter_across_the_swarm_does_not_stretch_stalls_past_a_few_round_trips():
    policy = TimeoutPolicy(floor=0.001, ceiling=2.0)
    for n in range(200):  # mostly 2 ms, with scheduling hiccups of 60 ms
        policy.sample(None, 0.06 if n % 10 == 0 else 0.002)
    overall = policy.overall
    assert overall.srtt + 4 * overall.rttvar > 4 * overall.srtt  # the variance term dominates
    assert policy.timeout_for(None) == pytest.approx(3 * overall.srtt)


def test_a_contact_whose_last_query_timed_out_stalls_at_the_floor():
    policy = TimeoutPolicy(floor=0.01, ceiling=2.0)
    contact = RTTEstimator()
    policy.sample(contact, 0.2)
    assert policy.timeout_for(contact) > 0.2
    assert policy.timeout_for(contact, failures=1) == 0.01
    assert policy.timeout_for(None, failures=1) == 0.01


def test_a_node_stalls_its_contact_that_just_timed_out_at_the_floor():
    node = DHTNode(Clock(), node_id=bytes(20))
    peer = b"\x80" + bytes(19)
    node.routing_table.heard_from(peer, ("127.0.0.2", 6881))
    node.timeouts.sample(node.routing_table.get(peer).rtt, 0.3)
    assert node.stall_timeout(peer) > node.settings.stall_floor
    node.routing_table.failed(peer)
    assert node.stall_timeout(peer) == node.settings.stall_floor
    node.routing_table.heard_from(peer, ("127.0.0.2", 6881))  # it answered after all
    assert node.stall_timeout(peer) > node.settings.stall_floor
