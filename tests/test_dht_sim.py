"""DHT behaviour on the simulated network (kademlia.sim) and a virtual clock:
travelling TTLs, churn, nodes moving address, read-repair across a partition, scale."""

import pytest

from tests.dht_helpers import BootstrapSwarm, Signer


@pytest.fixture
def make_swarm():
    swarms = []

    def make(count, seed=1, batch=50, **options):
        swarm = BootstrapSwarm(seed=seed, **options)
        swarm.grow(count, batch)
        swarms.append(swarm)
        return swarm

    yield make
    for swarm in swarms:
        swarm.stop()
        assert swarm.clock.getDelayedCalls() == [], "timers left after every node stopped"


def put_and_wait(swarm, node, item, ttl=None):
    accepted = swarm.run(node.put(item, ttl))
    swarm.settle(1)
    return accepted


# -- travelling TTL ------------------------------------------------------------


def test_item_put_with_ttl_30_is_gone_from_every_replica_after_30_seconds(make_swarm):
    swarm = make_swarm(40)
    item = Signer().item(b"short-lived")
    assert swarm.run(swarm.nodes[3].put(item, ttl=30)) == swarm.settings.k
    put_done = swarm.clock.seconds()
    replicas = swarm.holders(item.target)
    assert len(replicas) == swarm.settings.k
    for replica in replicas:
        assert 29 < swarm.clock.seconds() - put_done + replica.store.get(item.target)[1] <= 30
    swarm.wait(29)
    assert swarm.holders(item.target) == replicas
    swarm.wait(1)
    assert swarm.holders(item.target) == []
    assert swarm.run(swarm.nodes[7].get(item.target)) is None


def test_replica_handed_to_a_newly_joined_closer_node_after_20s_expires_10s_later(make_swarm):
    swarm = make_swarm(40)
    item = Signer().item(b"travelling")
    put_and_wait(swarm, swarm.nodes[3], item, ttl=30)
    put_done = swarm.clock.seconds()
    swarm.wait(20)
    # A node whose id is nearer the target than anyone's joins; replicas hand it the item.
    newcomer_id = item.target[:-1] + bytes([item.target[-1] ^ 1])
    newcomer = swarm.add_node(node_id=newcomer_id)
    swarm.run(newcomer.bootstrap([swarm.nodes[0].address]))
    swarm.settle(1)
    held = newcomer.store.get(item.target)
    assert held is not None, "the new nearest node was not handed the item"
    assert held[0] == item
    assert held[1] <= 10
    swarm.wait(put_done + 30 - swarm.clock.seconds())
    assert newcomer.store.get(item.target) is None
    assert swarm.holders(item.target) == []


def test_replica_restored_by_read_repair_after_20s_expires_10s_later(make_swarm):
    swarm = make_swarm(40)
    item = Signer().item(b"repaired")
    publisher, getter = swarm.nodes[3], swarm.nodes[5]
    missed = next(n for n in swarm.nearest(item.target) if n not in (publisher, getter))
    # The put never reaches one of the nearest nodes ...
    swarm.network.block(publisher.address, missed.address)
    put_and_wait(swarm, publisher, item, ttl=30)
    put_done = swarm.clock.seconds()
    swarm.network.unblock(publisher.address, missed.address)
    assert missed.store.get(item.target) is None
    # ... until a get 20 s later finds it without the item and repairs it.
    swarm.wait(20)
    assert swarm.run(getter.get(item.target)) == item
    swarm.settle(1)
    held = missed.store.get(item.target)
    assert held is not None, "read-repair did not reach the node that missed the put"
    assert held[1] <= 10
    swarm.wait(put_done + 30 - swarm.clock.seconds())
    assert swarm.holders(item.target) == []


# -- churn: the prototype's "nodes disconnecting" experiment ---------------------


def put_items(swarm, count, ttl=None):
    items = [Signer(n).item(b"value %d" % n) for n in range(count)]
    for n, item in enumerate(items):
        assert put_and_wait(swarm, swarm.nodes[(7 * n + 1) % len(swarm.nodes)], item, ttl) >= 1
    return items


def assert_every_survivor_can_get(swarm, items, survivors, getters=5):
    for n, item in enumerate(items):
        for getter in survivors[n::max(1, len(survivors) // getters)][:getters]:
            assert swarm.run(getter.get(item.target)) == item, f"item {n} lost for a survivor"


@pytest.mark.parametrize("killed", [1, 5, 30])
def test_values_stay_retrievable_when_nodes_die_silently(make_swarm, killed):
    swarm = make_swarm(60, seed=killed)
    items = put_items(swarm, 4)
    victims = swarm.rng.sample(swarm.nodes[1:], killed)
    for node in victims:
        swarm.kill(node)
    survivors = [n for n in swarm.nodes if n not in victims]
    assert_every_survivor_can_get(swarm, items, survivors)


def test_a_value_survives_the_death_of_all_but_one_replica(make_swarm):
    swarm = make_swarm(60)
    (item,) = put_items(swarm, 1)
    replicas = swarm.holders(item.target)
    assert len(replicas) == swarm.settings.k
    for node in replicas[1:]:
        swarm.kill(node)
    survivors = [n for n in swarm.nodes if n not in replicas[1:]]
    assert_every_survivor_can_get(swarm, [item], survivors)


def test_lookups_do_not_wait_out_the_hard_timeout_on_dead_nodes(make_swarm):
    swarm = make_swarm(60)
    (item,) = put_items(swarm, 1)
    for node in swarm.rng.sample(swarm.nodes[1:], 30):
        swarm.kill(node)
    getter = next(n for n in swarm.nodes if n.address not in swarm.network._dead)
    started = swarm.clock.seconds()
    assert swarm.run(getter.get(item.target)) == item
    # Adaptive stall timeouts: dead candidates are passed over well before query_timeout.
    assert swarm.clock.seconds() - started < swarm.settings.query_timeout


# -- a node leaves and comes back at another address ---------------------------


def test_a_node_back_at_a_new_address_replaces_its_old_contact_and_its_items_are_found(make_swarm, tmp_path):
    swarm = make_swarm(40)
    items = put_items(swarm, 3)
    # The mover is a replica of the first item, restarting with its state file.
    state = str(tmp_path / "mover.json")
    mover = swarm.holders(items[0].target)[0]
    mover.state_path = state
    old_address, mover_id = mover.address, mover.node_id
    # One node that knew it will not hear from it for a while: its contact goes stale.
    stale_holder = next(n for n in swarm.nodes[::-1] if n is not mover and n.routing_table.get(mover_id))
    swarm.run(mover.stop())
    swarm.wait(30)
    back_address = ("10.200.0.1", 7000)
    swarm.network.block(back_address, stale_holder.address)
    swarm.network.block(stale_holder.address, back_address)
    back = swarm.add_node(node_id=mover_id, address=back_address, state_path=state)
    assert back.node_id == mover_id
    returned_at = swarm.clock.seconds()
    swarm.run(back.bootstrap([]))  # rejoins through the routing table it saved
    swarm.settle(1)
    others = [n for n in swarm.nodes if n not in (mover, back, stale_holder)]
    # Whoever has heard from it since it came back knows it at its new address only.
    informed = [n for n in others if (c := n.routing_table.get(mover_id)) and c.last_seen >= returned_at]
    assert len(informed) >= swarm.settings.k
    for node in informed:
        assert node.routing_table.get(mover_id).address == back.address
        assert all(c.address != old_address for c in node.routing_table.contacts())
    # Its items are found again, and a get brings the replica it lost back to it.
    for item in items:
        assert swarm.run(others[-1].get(item.target)) == item
    swarm.settle(1)
    assert back.store.get(items[0].target) is not None
    found = swarm.run(others[5].find_node(mover_id))
    assert (found[0].node_id, found[0].address) == (mover_id, back.address)
    # A lookup from a node still holding the old address reaches it where others say it is.
    swarm.network.unblock(back_address, stale_holder.address)
    swarm.network.unblock(stale_holder.address, back_address)
    assert stale_holder.routing_table.get(mover_id).address == old_address
    found = swarm.run(stale_holder.find_node(mover_id))
    assert (found[0].node_id, found[0].address) == (mover_id, back.address)
    assert stale_holder.routing_table.get(mover_id).address == back.address
    # The rest find out as their own maintenance pings the old address and it stays silent.
    swarm.wait(20 * 60)
    for node in others:
        contact = node.routing_table.get(mover_id)
        assert contact is None or contact.address == back.address or contact.is_bad()


# -- read-repair across a healed partition ---------------------------------------


def test_after_a_partition_heals_a_get_brings_the_newest_item_to_stale_replicas(make_swarm):
    swarm = make_swarm(60)
    signer = Signer(42)
    old, new = signer.item(b"before the split", seq=1), signer.item(b"after the split", seq=2)
    put_and_wait(swarm, swarm.nodes[1], old)
    replicas = swarm.holders(old.target)
    # Split so that half of the replicas, and the publisher, are on each side.
    left = set(replicas[::2]) | set(swarm.nodes[1::2])
    left.add(swarm.nodes[1])
    right = [n for n in swarm.nodes if n not in left]
    stale = [n for n in replicas if n in right]
    assert stale
    swarm.network.partition([[n.address for n in left], [n.address for n in right]])
    assert put_and_wait(swarm, swarm.nodes[1], new) >= 1
    assert all(n.store.get(old.target)[0] == old for n in stale), "the update crossed the partition"
    swarm.network.heal()
    getter = right[-1]
    assert swarm.run(getter.get(old.target)) == new
    swarm.settle(2)
    for node in stale:
        assert node.store.get(new.target)[0] == new, f"{node.address} still holds seq 1"
    # Every node among the k nearest now holds the newest item.
    assert all(n.store.get(new.target)[0] == new for n in swarm.nearest(new.target))


# -- scale ---------------------------------------------------------------------


@pytest.mark.slow
def test_two_thousand_nodes_bootstrap_and_find_each_others_items(make_swarm):
    nodes = 2000
    swarm = make_swarm(nodes, seed=2000, batch=100)
    sizes = sorted(len(n.routing_table) for n in swarm.nodes)
    assert sizes[0] >= swarm.settings.k, "a node joined with a nearly empty routing table"
    # Bootstrap cost stays logarithmic: about 7 lookups of ~12 queries per join.
    assert swarm.network.sent / nodes < 250
    items = [Signer(n).item(b"item %d" % n) for n in range(5)]
    for n, item in enumerate(items):
        assert swarm.run(swarm.nodes[swarm.rng.randrange(nodes)].put(item)) == swarm.settings.k
    swarm.settle(1)
    for item in items:
        # The replicas are exactly the k nodes nearest the target in the whole swarm.
        assert set(swarm.holders(item.target)) == set(swarm.nearest(item.target))
        for getter in swarm.rng.sample(swarm.nodes, 3):
            assert swarm.run(getter.get(item.target)) == item


def test_stopping_a_node_mid_lookup_sends_nothing_more_and_leaves_no_timers(make_swarm):
    swarm = make_swarm(30)
    node = swarm.nodes[5]
    lookup = node.get(bytes(20))
    swarm.clock.advance(0.001)  # queries in flight
    assert node.protocol.pending_count() > 0
    sent = node.protocol.stats.sent
    swarm.run(node.stop())
    assert swarm.run(lookup) is None
    swarm.wait(5)
    assert node.protocol.stats.sent == sent
    assert node.protocol.pending_count() == 0
    assert not [c for c in swarm.clock.getDelayedCalls() if getattr(c.func, "__self__", None) is node.protocol]
