"""kademlia.tokens: write tokens bound to the requester's IP, rotating secret."""

import itertools

from twisted.internet.task import Clock

from kademlia.tokens import TokenManager


def make_tokens(rotate_after=300):
    clock = Clock()
    counter = itertools.count()
    secrets = lambda n: next(counter).to_bytes(n, "big")  # distinct, deterministic secrets
    return TokenManager(clock.seconds, rotate_after, secrets), clock


def test_a_token_is_valid_for_the_ip_it_was_issued_to():
    tokens, _ = make_tokens()
    token = tokens.issue("127.0.0.5")
    assert tokens.is_valid("127.0.0.5", token)


def test_a_token_is_bound_to_its_ip():
    tokens, _ = make_tokens()
    token = tokens.issue("127.0.0.5")
    assert not tokens.is_valid("127.0.0.6", token)
    assert tokens.issue("127.0.0.6") != token


def test_a_token_survives_one_rotation_but_not_two():
    tokens, clock = make_tokens(rotate_after=300)
    token = tokens.issue("127.0.0.5")
    clock.advance(300)
    assert tokens.is_valid("127.0.0.5", token)
    assert tokens.issue("127.0.0.5") != token
    clock.advance(300)
    assert not tokens.is_valid("127.0.0.5", token)


def test_tokens_issued_just_before_a_rotation_last_at_least_one_period():
    tokens, clock = make_tokens(rotate_after=300)
    clock.advance(299)
    token = tokens.issue("127.0.0.5")
    clock.advance(300)
    assert tokens.is_valid("127.0.0.5", token)


def test_missing_or_malformed_tokens_are_invalid():
    tokens, _ = make_tokens()
    good = tokens.issue("127.0.0.5")
    for bad in (None, 5, [], {}, b"", good[:-1], good + b"x", bytes(len(good))):
        assert not tokens.is_valid("127.0.0.5", bad)


def test_two_managers_issue_different_tokens():
    a, b = TokenManager(Clock().seconds), TokenManager(Clock().seconds)
    assert a.issue("127.0.0.5") != b.issue("127.0.0.5")
