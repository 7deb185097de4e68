"""kademlia.storage: BEP 44 replacement rules and codes, quotas, travelling TTL."""

import pytest
from twisted.internet.task import Clock

from kademlia.items import (
    ERROR_CAS_MISMATCH,
    ERROR_INVALID_SIGNATURE,
    ERROR_SALT_TOO_BIG,
    ERROR_SEQ_LESS_THAN_CURRENT,
    ERROR_V_TOO_BIG,
)
from kademlia.krpc import SERVER_ERROR, KRPCError
from kademlia.storage import ItemStore
from tests.dht_helpers import Signer, forged

IP = "127.0.0.2"


def make_store(**limits):
    clock = Clock()
    return ItemStore(clock.seconds, **limits), clock


def refusal_code(store, item, ttl=None, ip=IP, cas=None):
    with pytest.raises(KRPCError) as caught:
        store.put(item, ttl, ip, cas)
    return caught.value.code


def test_a_signed_item_is_stored_and_returned_with_its_ttl():
    store, _ = make_store()
    item = Signer().item(b"hello")
    store.put(item, 60, IP)
    assert store.get(item.target) == (item, 60)


def test_higher_seq_replaces():
    store, _ = make_store()
    signer = Signer()
    store.put(signer.item(b"old", seq=1), None, IP)
    newer = signer.item(b"new", seq=2)
    store.put(newer, None, IP)
    assert store.get(newer.target)[0] == newer


def test_lower_seq_is_refused_with_302():
    store, _ = make_store()
    signer = Signer()
    store.put(signer.item(b"new", seq=5), None, IP)
    assert refusal_code(store, signer.item(b"old", seq=4)) == ERROR_SEQ_LESS_THAN_CURRENT
    assert store.get(signer.item(b"x").target)[0].v == b"new"
    assert store.refused == 1


def test_equal_seq_with_a_different_value_is_refused_with_302():
    store, _ = make_store()
    signer = Signer()
    store.put(signer.item(b"one", seq=3), None, IP)
    assert refusal_code(store, signer.item(b"two", seq=3)) == ERROR_SEQ_LESS_THAN_CURRENT
    assert store.get(signer.item(b"x").target)[0].v == b"one"


def test_equal_seq_identical_item_is_accepted_and_extends_the_deadline():
    store, clock = make_store()
    item = Signer().item(b"same", seq=3)
    store.put(item, 30, IP)
    clock.advance(20)
    store.put(item, 30, IP)
    assert store.get(item.target) == (item, 30)


def test_identical_item_with_a_shorter_ttl_does_not_shorten_the_deadline():
    store, clock = make_store()
    item = Signer().item(b"same")
    store.put(item, 100, IP)
    store.put(item, 10, IP)
    clock.advance(50)
    assert store.get(item.target) == (item, 50)


def test_cas_mismatch_is_refused_with_301():
    store, _ = make_store()
    signer = Signer()
    store.put(signer.item(b"a", seq=1), None, IP)
    assert refusal_code(store, signer.item(b"b", seq=2), cas=7) == ERROR_CAS_MISMATCH
    store.put(signer.item(b"b", seq=2), None, IP, cas=1)
    assert store.get(signer.item(b"x").target)[0].v == b"b"


def test_bad_signature_is_refused_with_206():
    store, _ = make_store()
    item = Signer().item(b"genuine", seq=1)
    assert refusal_code(store, forged(item, v=b"forged")) == ERROR_INVALID_SIGNATURE
    assert refusal_code(store, forged(item, seq=2)) == ERROR_INVALID_SIGNATURE
    assert refusal_code(store, forged(item, k=Signer(9).public_key)) == ERROR_INVALID_SIGNATURE
    assert store.get(item.target) is None


def test_bad_signature_cannot_replace_a_held_item():
    store, _ = make_store()
    signer = Signer()
    held = signer.item(b"genuine", seq=1)
    store.put(held, None, IP)
    assert refusal_code(store, forged(held, seq=2, v=b"forged")) == ERROR_INVALID_SIGNATURE
    assert store.get(held.target)[0] == held


def test_oversized_v_is_refused_with_205():
    store, _ = make_store()
    signer = Signer()
    small = signer.item(b"x")
    assert refusal_code(store, forged(small, v=b"x" * 1000)) == ERROR_V_TOO_BIG


def test_v_of_exactly_1000_bencoded_bytes_is_accepted():
    store, _ = make_store()
    item = Signer().item(b"x" * 995)  # "995:" + 995 bytes
    assert len(item.encoded_v) == 999
    store.put(item, None, IP)
    item = Signer(2).item(b"x" * 996)
    assert len(item.encoded_v) == 1000
    store.put(item, None, IP)


def test_oversized_salt_is_refused_with_207():
    store, _ = make_store()
    item = Signer().item(b"x", salt=b"s")
    assert refusal_code(store, forged(item, salt=b"s" * 65)) == ERROR_SALT_TOO_BIG


def test_salted_items_are_separate_targets():
    store, _ = make_store()
    signer = Signer()
    a, b = signer.item(b"a", salt=b"one"), signer.item(b"b", salt=b"two")
    store.put(a, None, IP)
    store.put(b, None, IP)
    assert store.get(a.target)[0] == a and store.get(b.target)[0] == b


def test_items_per_ip_are_capped():
    store, _ = make_store(max_per_ip=3)
    for n in range(3):
        store.put(Signer(n).item(b"v"), None, IP)
    assert refusal_code(store, Signer(10).item(b"v")) == SERVER_ERROR
    store.put(Signer(11).item(b"v"), None, "127.0.0.3")  # another source is still welcome
    assert len(store) == 4


def test_updating_an_item_does_not_count_against_the_ip_quota():
    store, _ = make_store(max_per_ip=1)
    signer = Signer()
    for seq in range(1, 5):
        store.put(signer.item(b"v", seq=seq), None, IP)
    assert len(store) == 1


def test_total_items_are_capped():
    store, _ = make_store(max_items=4, max_per_ip=100)
    for n in range(4):
        store.put(Signer(n).item(b"v"), None, f"127.0.0.{n + 1}")
    assert refusal_code(store, Signer(10).item(b"v"), ip="127.0.0.9") == SERVER_ERROR


def test_expired_items_free_their_quota():
    store, clock = make_store(max_items=2, max_per_ip=2)
    store.put(Signer(0).item(b"v"), 10, IP)
    store.put(Signer(1).item(b"v"), 10, IP)
    clock.advance(10)
    store.put(Signer(2).item(b"v"), 10, IP)  # both quotas freed by the expiry
    assert len(store) == 1


def test_item_is_gone_when_its_ttl_runs_out():
    store, clock = make_store()
    item = Signer().item(b"v")
    store.put(item, 30, IP)
    clock.advance(29.5)
    assert store.get(item.target) == (item, 0.5)
    clock.advance(0.5)
    assert store.get(item.target) is None
    assert store.items() == []


def test_ttl_is_capped_by_the_node():
    store, clock = make_store(max_ttl=100)
    item = Signer().item(b"v")
    store.put(item, 10**9, IP)
    assert store.get(item.target)[1] == 100


def test_item_without_ttl_gets_the_default_lifetime():
    store, _ = make_store(default_ttl=77)
    item = Signer().item(b"v")
    store.put(item, None, IP)
    assert store.get(item.target)[1] == 77


def test_remaining_ttl_is_what_is_handed_on():
    store, clock = make_store()
    item = Signer().item(b"v")
    store.put(item, 30, IP)
    clock.advance(20)
    assert store.items() == [(item, 10)]
    # A replica stored with the remaining TTL expires with the original.
    replica, replica_clock = make_store()
    replica_clock.advance(clock.seconds())
    replica.put(*store.get(item.target), IP)
    replica_clock.advance(10)
    assert replica.get(item.target) is None


def test_a_newer_seq_resets_the_deadline_to_its_own_ttl():
    store, clock = make_store()
    signer = Signer()
    store.put(signer.item(b"v", seq=1), 30, IP)
    clock.advance(25)
    store.put(signer.item(b"v", seq=2), 30, IP)
    clock.advance(25)
    assert store.get(signer.item(b"v").target)[0].seq == 2


def test_expire_drops_only_dead_items():
    store, clock = make_store()
    short, long = Signer(0).item(b"v"), Signer(1).item(b"v")
    store.put(short, 5, IP)
    store.put(long, 50, IP)
    clock.advance(5)
    store.expire()
    assert len(store) == 1 and store.get(long.target) is not None
