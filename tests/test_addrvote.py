from hypothesis import given, strategies as st
from twisted.internet.task import Clock

from kadchat.addrvote import CONSISTENT, RANDOM, UNKNOWN, AddressVotes

ME = ("203.0.113.5", 40000)


def _votes(clock=None, **kwargs):
    clock = clock or Clock()
    return clock, AddressVotes(clock.seconds, **kwargs)


def _voter(i):
    return (f"127.0.0.{i}", 6881)


def test_unknown_until_three_distinct_voters():
    _, votes = _votes()
    votes.add(_voter(1), b"a" * 20, ME)
    votes.add(_voter(2), b"b" * 20, ME)
    assert votes.external_address() is None and votes.nat_class() == UNKNOWN
    votes.add(_voter(3), b"c" * 20, ME)
    assert votes.external_address() == ME and votes.nat_class() == CONSISTENT


def test_one_host_with_many_node_ids_and_ports_is_one_vote():
    _, votes = _votes()
    for port in range(5):
        votes.add(("127.0.0.1", 7000 + port), bytes([port]) * 20, ME)
    assert votes.external_address() is None


def test_latest_vote_of_a_voter_wins():
    _, votes = _votes()
    for i in (1, 2, 3):
        votes.add(_voter(i), b"x" * 20, ("198.51.100.1", 1000))
    for i in (1, 2, 3):
        votes.add(_voter(i), b"x" * 20, ME)  # we moved to a new network
    assert votes.external_address() == ME and votes.nat_class() == CONSISTENT


def test_votes_expire_after_the_window():
    clock, votes = _votes(window=300)
    for i in (1, 2, 3):
        votes.add(_voter(i), b"x" * 20, ME)
    clock.advance(299)
    assert votes.external_address() == ME
    votes.add(_voter(1), b"x" * 20, ME)
    clock.advance(2)
    assert votes.external_address() is None
    votes.add(_voter(2), b"x" * 20, ME)
    votes.add(_voter(3), b"x" * 20, ME)
    assert votes.external_address() == ME


def test_one_liar_cannot_move_the_address_or_the_class():
    _, votes = _votes()
    votes.add(_voter(9), b"l" * 20, ("192.0.2.66", 1))
    for i in (1, 2, 3):
        votes.add(_voter(i), b"x" * 20, ME)
    votes.add(_voter(9), b"l" * 20, ("192.0.2.66", 1))  # the liar votes last, too
    assert votes.external_address() == ME and votes.nat_class() == CONSISTENT


def test_split_vote_gives_no_address():
    _, votes = _votes()
    votes.add(_voter(1), b"x" * 20, ME)
    votes.add(_voter(2), b"x" * 20, ME)
    votes.add(_voter(3), b"x" * 20, ("192.0.2.1", 5))
    votes.add(_voter(4), b"x" * 20, ("192.0.2.1", 5))
    assert votes.external_address() is None and votes.nat_class() == UNKNOWN


def test_different_ports_from_each_voter_mean_a_random_mapping():
    _, votes = _votes()
    for i in (1, 2, 3):
        votes.add(_voter(i), b"x" * 20, (ME[0], 50000 + i))
    assert votes.nat_class() == RANDOM
    assert votes.external_address() == (ME[0], 50003)  # the newest, as none is more common


def test_one_liar_cannot_make_a_consistent_nat_look_random():
    _, votes = _votes()
    votes.add(_voter(1), b"x" * 20, ME)
    votes.add(_voter(2), b"x" * 20, ME)
    votes.add(_voter(9), b"x" * 20, (ME[0], 1))
    assert votes.nat_class() == UNKNOWN
    assert votes.external_address() == ME


def test_one_liar_cannot_make_a_random_nat_look_consistent():
    _, votes = _votes()
    for i in (1, 2, 3):
        votes.add(_voter(i), b"x" * 20, (ME[0], 50000 + i))
    votes.add(_voter(9), b"x" * 20, (ME[0], 50001))
    assert votes.nat_class() == RANDOM


@given(
    honest=st.integers(3, 8),
    liar_host=st.sampled_from([ME[0], "192.0.2.7"]),
    liar_port=st.integers(1, 65535),
    liar_first=st.booleans(),
)
def test_a_single_liar_never_changes_the_outcome(honest, liar_host, liar_port, liar_first):
    _, votes = _votes()
    if liar_first:
        votes.add(("10.9.9.9", 1), b"l" * 20, (liar_host, liar_port))
    for i in range(honest):
        votes.add(_voter(i + 1), b"x" * 20, ME)
    if not liar_first:
        votes.add(("10.9.9.9", 1), b"l" * 20, (liar_host, liar_port))
    assert votes.external_address() == ME and votes.nat_class() == CONSISTENT


def test_votes_with_bad_ports_are_ignored():
    _, votes = _votes()
    for i in (1, 2, 3):
        votes.add(_voter(i), b"x" * 20, (ME[0], 0))
    assert votes.external_address() is None


def test_memory_is_bounded_by_dropping_the_oldest_voters():
    _, votes = _votes()
    for i in range(AddressVotes.MAX_VOTERS + 50):
        votes.add((f"10.0.{i // 256}.{i % 256}", 1), b"x" * 20, ME)
    assert len(votes._votes) == AddressVotes.MAX_VOTERS
    assert "10.0.0.0" not in votes._votes and votes.external_address() == ME
