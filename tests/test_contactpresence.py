"""What we show of a contact (kadchat.contactpresence), by the transcript of changes it reports."""

from twisted.internet import task

from kadchat.contactpresence import CONNECTED_STATES, TRANSITIONS, ContactPresenceBoard, Event, State
from kadchat.model import ContactPresence as P


def board():
    clock, shown = task.Clock(), []
    clock.advance(1_700_000_000)
    return clock, shown, ContactPresenceBoard(clock, lambda name, presence: shown.append((name, presence)))


def test_a_record_shows_seen_and_a_hello_connected_then_goodbye_offline_at_once():
    clock, shown, b = board()
    b.record("bob", "online", clock.seconds() - 5)
    b.hello("bob", "online", clock.seconds())
    b.hello("bob", "online", clock.seconds() + 15)  # keep-alive: nothing new to show
    b.gone("bob")
    assert shown == [("bob", P.SEEN), ("bob", P.CONNECTED), ("bob", P.OFFLINE)]
    assert not b.connected("bob")


def test_a_live_session_outranks_records_of_any_kind():
    clock, shown, b = board()
    b.hello("bob", "online", clock.seconds())
    b.record("bob", "offline")
    b.record("bob", "away", clock.seconds() - 50)
    assert b.shown("bob") is P.CONNECTED and b.connected("bob")


def test_away_is_shown_whether_connected_or_only_seen():
    clock, shown, b = board()
    b.record("bob", "away", clock.seconds())
    b.hello("bob", "away", clock.seconds())
    b.hello("bob", "online", clock.seconds())
    assert shown == [("bob", P.AWAY), ("bob", P.CONNECTED)]


def test_after_leaving_only_a_record_published_later_on_the_contacts_clock_shows_it_again():
    clock, shown, b = board()
    ahead = 90.0  # bob's clock runs 90 s ahead of ours
    b.hello("bob", "online", clock.seconds() + ahead)
    clock.advance(20)
    b.gone("bob")  # silent: crashed
    b.record("bob", "online", clock.seconds() + ahead - 30)  # published before it went silent
    assert b.shown("bob") is P.OFFLINE
    b.record("bob", "online", clock.seconds() + ahead + 5)  # back, published anew
    assert shown == [("bob", P.CONNECTED), ("bob", P.OFFLINE), ("bob", P.SEEN)]


def test_hello_always_connects_gone_always_ends_and_records_never_touch_a_connection():
    for state in State:
        assert TRANSITIONS[state, Event.HELLO_ONLINE] is State.CONNECTED
        assert TRANSITIONS[state, Event.GONE] is State.OFFLINE
    for state in CONNECTED_STATES:
        for record in (Event.RECORD_ONLINE, Event.RECORD_AWAY, Event.RECORD_OFFLINE):
            assert (state, record) not in TRANSITIONS
