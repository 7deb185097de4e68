"""kademlia.routing: bucket splitting, replacement cache, bad contacts, moved nodes, closest()."""

import random

import pytest
from twisted.internet.task import Clock

from kademlia.routing import BAD_AFTER_FAILURES, ID_BITS, QUESTIONABLE_AFTER, RoutingTable, distance
from tests.dht_helpers import random_ids

K = 8
OWN_ID = bytes(20)  # 000...: every id with the top bit set lands in one far bucket


def far_id(n):
    """Ids with the top bit set: all in the far half, which never splits."""
    return bytes([0x80]) + n.to_bytes(19, "big")


def address(n):
    return (f"127.0.0.{1 + n % 250}", 10000 + n)


def make_table(own_id=OWN_ID, k=K):
    clock = Clock()
    return RoutingTable(own_id, clock.seconds, k=k), clock


def fill_far_bucket(table, count=K):
    for n in range(count):
        table.heard_from(far_id(n), address(n))


def check_invariants(table):
    """Buckets tile the id space in order; only buckets near us are narrow; none overflows."""
    assert table.buckets[0].low == 0 and table.buckets[-1].high == 2**ID_BITS
    for left, right in zip(table.buckets, table.buckets[1:]):
        assert left.high == right.low
    for bucket in table.buckets:
        assert len(bucket.contacts) <= table.k
        assert all(bucket.covers(c.key) for c in bucket.contacts.values())


def test_a_full_bucket_holding_our_own_id_splits():
    table, _ = make_table()
    for n, node_id in enumerate(random_ids(K + 1, seed=1)):
        table.heard_from(node_id, address(n))
    assert len(table.buckets) >= 2
    assert len(table) == K + 1
    check_invariants(table)


def test_many_contacts_split_only_towards_our_id():
    own = random_ids(1, seed=2)[0]
    table, _ = make_table(own)
    for n, node_id in enumerate(random_ids(2000, seed=3)):
        table.heard_from(node_id, address(n))
    check_invariants(table)
    own_key = int.from_bytes(own, "big")
    # Every bucket is either the one holding our id or the sibling of a split along our path:
    # its width is then 2**(160 - depth) and widths strictly shrink towards our id.
    widths = [b.high - b.low for b in table.buckets if not b.covers(own_key)]
    assert len(set(widths)) == len(widths), "at most one far bucket per prefix length"
    assert len(table.buckets) < 30, "splits happened away from our own id"
    # Random ids: a 2000-node sample fills about log2(2000 / K) buckets.
    assert len(table) >= K * (len(table.buckets) - 3)


def test_newcomer_to_a_full_far_bucket_waits_in_the_replacement_cache():
    table, _ = make_table()
    fill_far_bucket(table)
    assert table.heard_from(far_id(100), address(100)) is None
    bucket = table.buckets[-1]
    # The first bucket (all ids) split once; the far half, without our id, did not.
    assert [(b.low, b.high) for b in table.buckets] == [(0, 2**159), (2**159, 2**160)]
    assert far_id(100) not in bucket.contacts
    assert [c.node_id for c in bucket.replacements] == [far_id(100)]


def test_replacement_cache_keeps_a_newcomer_once():
    table, _ = make_table()
    fill_far_bucket(table)
    table.heard_from(far_id(100), address(100))
    table.heard_from(far_id(100), address(100))
    assert len(table.buckets[-1].replacements) == 1


def test_a_contact_that_goes_bad_is_replaced_from_the_cache():
    table, _ = make_table()
    fill_far_bucket(table)
    table.heard_from(far_id(100), address(100))
    for _ in range(BAD_AFTER_FAILURES):
        table.failed(far_id(3))
    assert table.get(far_id(3)) is None
    assert table.get(far_id(100)) is not None
    assert table.get(far_id(100)).address == address(100)
    assert len(table.buckets[-1].replacements) == 0


def test_one_failure_does_not_evict_a_contact():
    table, _ = make_table()
    fill_far_bucket(table)
    table.heard_from(far_id(100), address(100))
    table.failed(far_id(3))
    assert table.get(far_id(3)) is not None
    assert table.get(far_id(100)) is None


def test_a_bad_contact_in_a_full_bucket_yields_to_a_newcomer_at_once():
    table, _ = make_table()
    fill_far_bucket(table)
    for _ in range(BAD_AFTER_FAILURES):
        table.failed(far_id(5))  # no replacement waiting: it stays, but bad
    assert table.get(far_id(5)) is not None
    assert table.heard_from(far_id(200), address(200)) is not None
    assert table.get(far_id(5)) is None
    assert table.get(far_id(200)) is not None


def test_bad_contacts_are_left_out_of_closest():
    table, _ = make_table()
    fill_far_bucket(table)
    for _ in range(BAD_AFTER_FAILURES):
        table.failed(far_id(0))
    assert far_id(0) not in [c.node_id for c in table.closest(far_id(0))]
    assert far_id(0) in [c.node_id for c in table.closest(far_id(0), exclude_bad=False)]


def test_hearing_from_a_bad_contact_again_makes_it_good():
    table, _ = make_table()
    fill_far_bucket(table)
    for _ in range(BAD_AFTER_FAILURES):
        table.failed(far_id(1))
    table.heard_from(far_id(1), address(1))
    assert not table.get(far_id(1)).is_bad()


def test_a_node_back_from_a_new_address_replaces_its_old_contact():
    table, _ = make_table()
    fill_far_bucket(table)
    moved = far_id(4)
    new_address = ("127.0.0.99", 40000)
    table.heard_from(moved, new_address)
    assert table.get(moved).address == new_address
    assert len(table) == K
    assert [c for c in table.contacts() if c.address == address(4)] == []
    # Another node now at the old address must not evict the moved contact.
    table.heard_from(far_id(50), address(4))
    assert table.get(moved).address == new_address
    assert [c.node_id for c in table.buckets[-1].replacements] == [far_id(50)]


def test_a_new_node_id_at_a_known_address_replaces_the_old_contact():
    table, _ = make_table()
    fill_far_bucket(table, K - 1)
    table.heard_from(far_id(300), address(2))  # node restarted with a fresh id, same address
    assert table.get(far_id(2)) is None
    assert table.get(far_id(300)).address == address(2)
    assert len(table) == K - 1


def test_own_id_is_never_a_contact():
    table, _ = make_table()
    assert table.heard_from(OWN_ID, address(1)) is None
    assert len(table) == 0


def test_quiet_contacts_become_questionable_and_idle_buckets_stale():
    table, clock = make_table()
    fill_far_bucket(table, 3)
    clock.advance(QUESTIONABLE_AFTER - 1)
    table.heard_from(far_id(0), address(0))
    clock.advance(2)
    assert {c.node_id for c in table.questionable()} == {far_id(1), far_id(2)}
    assert table.stale_buckets() == []
    clock.advance(QUESTIONABLE_AFTER)
    assert table.stale_buckets() == table.buckets


@pytest.mark.parametrize("seed", range(6))
def test_closest_matches_brute_force_on_random_tables(seed):
    rng = random.Random(seed)
    own = rng.randbytes(20)
    table, _ = make_table(own, k=rng.choice([2, 4, 8, 20]))
    ids = [rng.randbytes(20) for _ in range(rng.choice([5, 60, 700]))]
    # Some ids share long prefixes with our own, so the table is deep near us.
    for _ in range(50):
        shared = rng.randrange(1, 19)
        ids.append(own[:shared] + rng.randbytes(20 - shared))
    for n, node_id in enumerate(ids):
        table.heard_from(node_id, address(n))
    known = [c.node_id for c in table.contacts()]
    targets = [rng.randbytes(20) for _ in range(30)] + rng.sample(known, 5) + [own]
    for target in targets:
        for count in (1, table.k, 3 * table.k):
            expected = sorted(known, key=lambda i: distance(i, target))[:count]
            assert [c.node_id for c in table.closest(target, count)] == expected


def test_closest_on_an_empty_table_is_empty():
    table, _ = make_table()
    assert table.closest(far_id(1)) == []


def test_random_id_of_a_bucket_falls_in_its_range():
    table, _ = make_table()
    for n, node_id in enumerate(random_ids(300, seed=9)):
        table.heard_from(node_id, address(n))
    for bucket in table.buckets:
        for _ in range(5):
            assert bucket.covers(int.from_bytes(bucket.random_id(), "big"))
