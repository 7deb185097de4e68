"""kademlia.simswarm.RoutingUpkeep: the simulator's stand-in for BEP 5 table upkeep."""

from kademlia.settings import DHTSettings
from kademlia.simswarm import RoutingUpkeep, SimSwarm


def test_upkeep_forgets_the_dead_and_refills_their_buckets_with_live_nodes():
    swarm = SimSwarm.build(200, seed=5, settings=DHTSettings(maintenance_interval=10.0 ** 9))
    dead = {n.node_id for n in swarm.kill_fraction(0.3)}
    upkeep = RoutingUpkeep(swarm, interval=900)
    upkeep.start()
    swarm.advance(901)
    live = {n.node_id for n in swarm.nodes}
    assert upkeep.forgotten > 0
    keys = [int.from_bytes(i, "big") for i in live]
    for node in swarm.nodes:
        table = node.routing_table
        ids = {c.node_id for c in table.contacts()}
        assert not ids & dead and ids <= live
        for bucket in table.buckets:  # holes filled, as far as live nodes go
            there = sum(1 for key in keys if bucket.low <= key < bucket.high and key != table.own_key)
            assert len(bucket.contacts) >= min(bucket.k, there)


def test_upkeep_leaves_out_nodes_that_do_not_serve():
    swarm = SimSwarm.build(100, seed=6, settings=DHTSettings(maintenance_interval=10.0 ** 9))
    clients = swarm.add(5)
    swarm.kill_fraction(0.3, spare=clients)
    RoutingUpkeep(swarm, serves=lambda node: node not in clients).run()
    known = {c.node_id for n in swarm.nodes for c in n.routing_table.contacts()}
    assert not known & {c.node_id for c in clients}
