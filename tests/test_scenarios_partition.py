"""A network split in two for 10 minutes, then healed (2,000 nodes, 200 owners
refreshing every REFRESH seconds, seeded, virtual clock)."""

import pytest

from twisted.internet.task import Clock

from kademlia.routing import BAD_AFTER_FAILURES, RoutingTable
from tests.scenario_recipes import replica_state, running, split


@pytest.mark.slow
def test_ten_minute_split_converges_to_newest_seq_within_one_refresh_of_healing():
    figures = split(seed=13, nodes=2000, owners=200, lookups=600, duration=600.0)
    during_same, during_across = figures["same_side"], figures["across"]
    closest = figures["one_refresh_after_heal"]
    after = figures["after_heal"]
    detail = (f"during the split, owner's side: {during_same.describe()}; other side: "
              f"{during_across.describe()}; one refresh after healing: "
              f"{closest['records_converged']:.1%} of records have the newest seq on all k "
              f"closest nodes, {closest['lagging_copies']}/{closest['copies']} copies lag "
              f"elsewhere (never served: lookups read the k closest; they die with their TTL); "
              f"lookups: {after.describe()}")
    assert during_same.newest_rate >= 0.99, detail
    assert closest["records_converged"] == 1.0, detail
    assert after.newest_rate >= 0.999, detail
    assert figures["timers_left"] == []


def test_contacts_that_failed_during_a_split_are_pinged_at_the_next_maintenance():
    clock = Clock()
    table = RoutingTable(b"\x00" * 20, clock.seconds, k=8)
    ids = [bytes([0x80 + i]) + b"\x00" * 19 for i in range(3)]
    for i, node_id in enumerate(ids):
        table.heard_from(node_id, ("10.0.0.%d" % (i + 1), 6881))
    for _ in range(BAD_AFTER_FAILURES):
        table.failed(ids[1])  # unreachable across the split, and nobody to replace it
    clock.advance(60)
    assert [c.node_id for c in table.questionable()] == [ids[1]]


def test_republishing_holders_keep_the_replica_set_at_the_k_closest_nodes():
    # A holder's own lookup never lists itself; before counting itself in, each
    # republish round pushed the item to the (k+1)-th closest node, a copy that the
    # owner's later puts never reached.
    with running(300, seed=21, owners=20) as (swarm, owners, leftovers):
        swarm.advance(3 * swarm.settings.republish_interval + 10)
        state = replica_state(swarm, owners)
    assert state["records_converged"] == 1.0, state
    assert state["copies"] == swarm.settings.k * 20, state
    assert state["lagging_copies"] == 0, state
    assert leftovers == []
