"""Dead drop keys and format (kadchat.deaddrop): who can find, read and acknowledge a drop."""

import pytest
from hypothesis import given, settings, strategies as st
from nacl.signing import SigningKey

from kadchat.deaddrop import (
    ACK_SEQ, CHUNK_SIZE, DATA_SEQ, PER_SLOT, DropError, Fragment, Pair, Position, Receipt, split,
)
from kademlia import bencode
from kademlia.items import MAX_V_SIZE

ALICE, BOB, MALLORY = (SigningKey(bytes([n]) * 32) for n in (1, 2, 3))
A, B, M = (bytes(k.verify_key) for k in (ALICE, BOB, MALLORY))
P = Position(493_000, 0)


def fragment(chunk=b"hello", index=0, count=1):
    return Fragment(b"i" * 16, 7, 5, 1_700_000_000_000_000, 1_700_000_100_000_000, index, count, chunk)


def test_both_sides_derive_the_same_keys_per_direction():
    assert Pair(ALICE, B).outgoing(P).target == Pair(BOB, A).incoming(P).target
    assert Pair(ALICE, B).incoming(P).target == Pair(BOB, A).outgoing(P).target
    assert Pair(ALICE, B).outgoing(P).target != Pair(ALICE, B).incoming(P).target


def test_every_position_has_an_unrelated_key():
    pair = Pair(ALICE, B)
    keys = {pair.outgoing(Position(s, i)).public_key for s in range(3) for i in range(PER_SLOT)}
    assert len(keys) == 3 * PER_SLOT
    assert A not in keys and B not in keys


def test_a_third_contact_of_bob_computes_other_positions():
    assert Pair(MALLORY, B).outgoing(P).target != Pair(ALICE, B).outgoing(P).target


def test_the_recipient_opens_the_senders_drop():
    item = Pair(ALICE, B).outgoing(P).data(fragment())
    assert item.seq == DATA_SEQ and item.verify()
    assert Pair(BOB, A).incoming(P).open(item) == fragment()


def test_the_ack_is_a_higher_seq_at_the_same_target_that_the_sender_reads():
    ack = Pair(BOB, A).incoming(P).ack(Receipt(b"i" * 16, 0, 1))
    drop = Pair(ALICE, B).outgoing(P)
    assert ack.seq == ACK_SEQ and ack.target == drop.target
    assert drop.open(ack) == Receipt(b"i" * 16, 0, 1)


def test_data_and_ack_items_have_one_fixed_size_within_bep44():
    sizes = {len(Pair(ALICE, B).outgoing(P).data(fragment(b"x" * n)).encoded_v) for n in (0, 1, CHUNK_SIZE)}
    sizes.add(len(Pair(BOB, A).incoming(P).ack(Receipt(b"i" * 16, 0, 1)).encoded_v))
    assert len(sizes) == 1 and sizes.pop() <= MAX_V_SIZE


def test_a_drop_from_another_position_or_pair_is_refused():
    item = Pair(ALICE, B).outgoing(P).data(fragment())
    with pytest.raises(DropError):
        Pair(BOB, A).incoming(P.next()).open(item)
    with pytest.raises(DropError):
        Pair(BOB, M).incoming(P).open(item)


def test_a_tampered_or_reseqd_drop_is_refused():
    slot = Pair(ALICE, B).outgoing(P)
    item = slot.data(fragment())
    forged = type(item)(item.k, item.salt, item.seq, item.v[:-1] + bytes([item.v[-1] ^ 1]), item.sig)
    with pytest.raises(DropError):
        Pair(BOB, A).incoming(P).open(forged)
    with pytest.raises(DropError):  # data sealed under the ack's seq: not a receipt
        Pair(BOB, A).incoming(P).open(type(item).create(item.k, slot._sign, item.v, ACK_SEQ))


def test_positions_chain_into_the_next_slot():
    assert Position(5, PER_SLOT - 1).next() == Position(6, 0)
    assert Position(5, 0).next() == Position(5, 1)


@settings(max_examples=50, deadline=None)
@given(st.text(min_size=1, max_size=3000))
def test_split_chunks_round_trip_through_drops(text):
    chunks = split(text)
    assert all(len(c) <= CHUNK_SIZE for c in chunks)
    pair, back = Pair(ALICE, B), Pair(BOB, A)
    got = b"".join(back.incoming(P).open(pair.outgoing(P).data(fragment(c, i, len(chunks)))).chunk
                   for i, c in enumerate(chunks))
    assert got.decode() == text
    assert bencode.decode(bencode.encode(pair.outgoing(P).data(fragment(chunks[0])).v))
