"""What we show of each contact: connected, away, seen in the network, or offline.

Two sources feed it. The live session (kadchat.liveness): a hello or
keep-alive says the contact is here, with its status; a goodbye or three
missed keep-alives say it has gone. The DHT (kadchat.tracker): a fresh record
says it was in the network a moment ago. A live session outranks any record;
and once a contact has left, only a record published after it left may show
it again (a record outlives its owner by up to its TTL). Records carry the
publisher's clock, so "after it left" is read on that clock: each hello tells
us the contact's time. The whole behaviour is the table at the end.
"""

from enum import Enum

from kadchat.model import ContactPresence


class State(Enum):
    OFFLINE = "offline"
    SEEN = "seen"
    SEEN_AWAY = "seen away"
    CONNECTED = "connected"
    CONNECTED_AWAY = "connected away"


class Event(Enum):
    RECORD_ONLINE = "record online"
    RECORD_AWAY = "record away"
    RECORD_OFFLINE = "record offline"
    HELLO_ONLINE = "hello online"  # a hello or keep-alive over the session
    HELLO_AWAY = "hello away"
    GONE = "gone"  # a goodbye, or the session went silent


SHOWN = {
    State.OFFLINE: ContactPresence.OFFLINE,
    State.SEEN: ContactPresence.SEEN,
    State.SEEN_AWAY: ContactPresence.AWAY,
    State.CONNECTED: ContactPresence.CONNECTED,
    State.CONNECTED_AWAY: ContactPresence.AWAY,
}
CONNECTED_STATES = (State.CONNECTED, State.CONNECTED_AWAY)


class _Contact:
    def __init__(self):
        self.state = State.OFFLINE
        self.clock_offset = 0.0  # the contact's clock minus ours, as its last hello said
        self.left_at = None  # on the contact's clock: when it said goodbye or went silent


class ContactPresenceBoard:
    def __init__(self, clock, on_change):
        """`on_change(name, ContactPresence)` is called when what we show of a contact changes."""
        self._clock = clock
        self._on_change = on_change
        self._contacts = {}

    def shown(self, name):
        return SHOWN[self._contact(name).state]

    def connected(self, name):
        return self._contact(name).state in CONNECTED_STATES

    def record(self, name, status, published=None):
        """The tracker found the contact's record: online or away, published at `published`
        on the contact's clock; or none that is alive (offline)."""
        if status == "offline":
            self._event(name, Event.RECORD_OFFLINE)
            return
        contact = self._contact(name)
        if contact.left_at is not None and published <= contact.left_at:
            return  # older than its goodbye: it says nothing about now
        self._event(name, Event.RECORD_AWAY if status == "away" else Event.RECORD_ONLINE)

    def hello(self, name, status, their_time):
        """The contact spoke over a live session: online or away, at `their_time` on its clock."""
        self._contact(name).clock_offset = their_time - self._clock.seconds()
        self._event(name, Event.HELLO_AWAY if status == "away" else Event.HELLO_ONLINE)

    def gone(self, name):
        """The contact said goodbye, or its session went silent."""
        self._event(name, Event.GONE)

    def rename(self, name, new_name):
        self._contacts[new_name] = self._contacts.pop(name, None) or _Contact()

    def forget(self, name):
        self._contacts.pop(name, None)

    def _contact(self, name):
        return self._contacts.setdefault(name, _Contact())

    def _event(self, name, event):
        contact = self._contact(name)
        before = SHOWN[contact.state]
        contact.state = TRANSITIONS.get((contact.state, event), contact.state)
        if event is Event.GONE:
            contact.left_at = self._clock.seconds() + contact.clock_offset
        if SHOWN[contact.state] is not before:
            self._on_change(name, SHOWN[contact.state])


S, E = State, Event
# (state, event) -> next state; a pair not listed leaves the state as it is:
# a record never overrides a live session.
TRANSITIONS = {
    **{(state, E.HELLO_ONLINE): S.CONNECTED for state in State},
    **{(state, E.HELLO_AWAY): S.CONNECTED_AWAY for state in State},
    **{(state, E.GONE): S.OFFLINE for state in State},
    (S.OFFLINE, E.RECORD_ONLINE): S.SEEN,
    (S.OFFLINE, E.RECORD_AWAY): S.SEEN_AWAY,
    (S.SEEN, E.RECORD_AWAY): S.SEEN_AWAY,
    (S.SEEN, E.RECORD_OFFLINE): S.OFFLINE,
    (S.SEEN_AWAY, E.RECORD_ONLINE): S.SEEN,
    (S.SEEN_AWAY, E.RECORD_OFFLINE): S.OFFLINE,
}
del S, E
