"""Storage nodes' republication of long-lived items (DHTNode.republish), in the simulator.

A 51 h dead drop used to be looked up by each of its 8 replicas every 5 minutes;
now one replica's turn comes about hourly and its get (read-repair) spares the
others theirs, and a replica set that lost members is still whole again within
the hour and a quarter.
"""

from nacl.signing import SigningKey

from kademlia.items import MutableItem
from kademlia.settings import DHTSettings
from kademlia.simswarm import SimSwarm

LONG_TTL = 51 * 3600


def _swarm_with_item(seed=3):
    swarm = SimSwarm.build(60, seed=seed, settings=DHTSettings(max_ttl=LONG_TTL))
    key = SigningKey(bytes([7]) * 32)
    item = MutableItem.create(bytes(key.verify_key), lambda m: key.sign(m).signature, b"drop", 1)
    writer = swarm.nodes[0]
    [accepted] = swarm.run_all([writer.put(item, ttl=LONG_TTL)])
    assert accepted == 8
    return swarm, item


def _count_republish_gets(swarm):
    counts = {"gets": 0}
    for node in swarm.nodes:
        def counting(target, salt=b"", get=node.get):
            counts["gets"] += 1
            return get(target, salt)
        node.get = counting
    return counts


def test_a_long_lived_item_is_looked_up_about_hourly_by_its_replica_set():
    swarm, item = _swarm_with_item()
    counts = _count_republish_gets(swarm)
    swarm.advance(4 * 3600)
    # Every replica every 5 minutes would be 8 x 48 = 384 lookups.
    assert 3 <= counts["gets"] <= 12
    assert len(swarm.holders(item.target)) >= 8


def test_replicas_lost_are_replaced_at_the_next_turn():
    swarm, item = _swarm_with_item(seed=4)
    holders = swarm.holders(item.target)
    for node in holders[:5]:
        swarm.kill(node)
    assert len(swarm.holders(item.target)) == 3
    swarm.advance(1.5 * 3600)
    assert len(swarm.holders(item.target)) >= 8
