"""kademlia.simswarm (seeded routing tables, kill/revive, churn) and the SimClock
behaviour the big scenarios rely on."""

import statistics

from kademlia.routing import distance
from kademlia.sim import SimClock
from kademlia.simswarm import Churn, SimSwarm, weibull, weibull_median


def test_simclock_runs_calls_scheduled_after_a_heap_compaction_within_the_same_advance():
    clock = SimClock()
    ran = []
    doomed = [clock.callLater(100, ran.append, "doomed") for _ in range(SimClock.COMPACT_AFTER * 3)]

    def cancel_many_then_schedule():
        for call in doomed:
            call.cancel()  # enough cancellations to make the clock compact its heap
        clock.callLater(0.5, lambda: ran.append(("later", clock.seconds())))

    clock.callLater(1, cancel_many_then_schedule)
    clock.advance(10)
    assert ran == [("later", 1.5)]


def test_seeded_tables_know_the_k_nearest_nodes_and_every_far_region():
    swarm = SimSwarm.build(300, seed=4)
    k = swarm.settings.k
    for node in swarm.nodes[:30]:
        nearest = sorted((n for n in swarm.nodes if n is not node),
                         key=lambda n: distance(n.node_id, node.node_id))[:k]
        known = {c.node_id for c in node.routing_table.contacts()}
        assert {n.node_id for n in nearest} <= known
        # The half of the id space on the other side of the first bit is covered by k contacts.
        far = [c for c in node.routing_table.contacts() if (c.node_id[0] ^ node.node_id[0]) & 0x80]
        assert len(far) == k
    swarm.stop()


def test_seeded_swarm_finds_an_item_put_from_any_node():
    from tests.dht_helpers import Signer
    swarm = SimSwarm.build(300, seed=5)
    item = Signer(1).item(b"seeded")
    accepted, = swarm.run_all([swarm.nodes[0].put(item)])
    assert accepted == swarm.settings.k
    found = swarm.run_all([n.get(item.target) for n in swarm.nodes[1:40]])
    assert found == [item] * 39
    swarm.stop()


def test_killed_node_goes_quiet_and_revived_node_rejoins_with_its_old_id_and_address():
    swarm = SimSwarm.build(200, seed=6)
    victim = swarm.nodes[10]
    swarm.kill(victim)
    assert victim not in swarm.nodes and not swarm.network.is_listening(victim.address)
    node, joined = swarm.revive(victim.address)
    size, = swarm.run_all([joined])
    assert (node.node_id, node.address) == (victim.node_id, victim.address)
    assert size >= swarm.settings.k
    swarm.stop()


def test_churn_with_weibull_sessions_makes_nodes_leave_and_return():
    swarm = SimSwarm.build(300, seed=7)
    session = weibull(swarm.rng, 0.5, 600)
    churn = Churn(swarm, session=session, downtime=lambda: 60.0)
    churn.start()
    swarm.advance(600)
    churn.stop()
    assert churn.departures > 20 and churn.arrivals > 10
    assert len(swarm.nodes) == 300 - churn.departures + churn.arrivals
    swarm.stop()
    swarm.clock.advance(5)
    assert swarm.clock.getDelayedCalls() == []


def test_weibull_sampler_matches_its_median():
    import random
    draw = weibull(random.Random(1), 0.5, 100.0)
    median = statistics.median(draw() for _ in range(20_000))
    assert abs(median - weibull_median(0.5, 100.0)) / weibull_median(0.5, 100.0) < 0.05
