import json

import pytest
from nacl.signing import SigningKey
from twisted.internet import task

from kadchat.cards import encode_card
from kadchat.contactrequests import MAX_PENDING, PER_HOUR, PendingRequests
from kadchat.errors import UserError

KEYS = [bytes(SigningKey(bytes([n]) * 32).verify_key) for n in range(1, MAX_PENDING + 3)]


def pending(tmp_path, clock, taken=("Bob",)):
    requests = PendingRequests(str(tmp_path / "requests.json"), clock, lambda n: n.lower() in {t.lower() for t in taken})
    assert requests.load() == []
    return requests


def test_a_request_is_kept_across_a_restart_under_a_name_unique_among_contacts_and_requests(tmp_path):
    clock = task.Clock()
    clock.advance(1000)
    requests = pending(tmp_path, clock)
    first = requests.offer(KEYS[0], "bob", "hi, it's Bob from work", "10.0.0.1")
    second = requests.offer(KEYS[1], "Bob", "", "10.0.0.2")
    assert (first.name, first.card, first.note, first.received) == ("bob (2)", encode_card(KEYS[0]),
                                                                     "hi, it's Bob from work", 1000)
    assert second.name == "Bob (3)"
    again = pending(tmp_path, clock)
    assert again.all() == [first, second]
    assert again.take("bob (2)") == (KEYS[0], first)
    with pytest.raises(UserError, match="no contact request from 'bob \\(2\\)'"):
        again.take("bob (2)")
    assert [r["name"] for r in json.loads((tmp_path / "requests.json").read_text())] == ["Bob (3)"]


def test_one_request_per_card_a_few_per_hour_per_source_and_a_cap_on_pending(tmp_path):
    clock = task.Clock()
    requests = pending(tmp_path, clock)
    assert requests.offer(KEYS[0], "x", "", "10.0.0.1") is not None
    assert requests.offer(KEYS[0], "x", "again", "10.0.0.1") is None  # already pending
    for key in KEYS[1:PER_HOUR]:
        assert requests.offer(key, "y", "", "10.0.0.1") is not None
    assert requests.offer(KEYS[PER_HOUR], "z", "", "10.0.0.1") is None  # that address asked enough
    for n in range(PER_HOUR - 1):  # ignored, it asks again from elsewhere
        requests.take("x")
        assert requests.offer(KEYS[0], "x", "", f"10.0.1.{n}") is not None
    requests.take("x")
    assert requests.offer(KEYS[0], "x", "", "10.0.0.9") is None  # that card asked enough
    clock.advance(3601)
    assert requests.offer(KEYS[0], "x", "", "10.0.0.9") is not None
    for n, key in enumerate(KEYS[PER_HOUR + 1:]):
        requests.offer(key, "many", "", f"10.1.{n}.1")
    assert len(requests.all()) == MAX_PENDING


def test_an_unreadable_file_is_one_problem(tmp_path):
    (tmp_path / "requests.json").write_text("{nope")
    requests = PendingRequests(str(tmp_path / "requests.json"), task.Clock(), lambda n: False)
    assert len(requests.load()) == 1 and requests.all() == []
