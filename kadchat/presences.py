"""What we know and show of each contact's presence, from its live session and its DHT records.

The tracker (kadchat.tracker) reports records, the live session
(kadchat.liveness) hellos and goodbyes; the board (kadchat.contactpresence)
decides what that shows. A record that shows a contact in the network sends
reachability racing towards it, and the session that comes of it says hello.
"""

from kadchat.contactpresence import ContactPresenceBoard
from kadchat.liveness import GONE_AFTER, KEEPALIVE, Liveness
from kadchat.messaging import EndpointListener
from kadchat.presence import AWAY, ONLINE
from kadchat.tracker import ADDRESS_CHANGED


class Presences(EndpointListener):  # the endpoint tells it of sessions and presence notes
    def __init__(self, clock, book, tracker, reachability, send_presence, on_shown, drop_session=lambda key: None,
                 keepalive=KEEPALIVE, gone_after=GONE_AFTER):
        """`on_shown(name, ContactPresence)` is told whenever what we show of a contact changes;
        `drop_session(peer_key)` when a contact has gone, so that its dead session goes too;
        `keepalive` and `gone_after` as in kadchat.liveness."""
        self._clock = clock
        self._drop_session = drop_session
        self._book = book
        self._tracker = tracker
        self._reachability = reachability
        self._on_shown = on_shown
        self.liveness = Liveness(clock, send_presence, self._hello, self._gone, keepalive, gone_after)
        self.board = ContactPresenceBoard(clock, self._shown_changed)
        tracker.subscribe(self)

    def presence_changed(self, name, event, presence):
        """kadchat.tracker.PresenceListener: the contact's records changed."""
        if not self._book.has(name):
            return
        if presence is not None:
            self._book.seen(name, presence.ts)
        if event in (ONLINE, AWAY, ADDRESS_CHANGED) and presence is not None:
            self._reachability.reach(self._book.key_of(name), presence)
        if event != ADDRESS_CHANGED:
            self.board.record(name, event, presence.ts if presence is not None else None)

    def session_ready(self, peer_key):
        self.liveness.session_ready(peer_key)

    def presence_received(self, peer_key, status, their_time):
        """The contact's word over a live session (kadchat.liveness)."""
        if self._book.is_contact(peer_key):
            self.liveness.presence_received(peer_key, status, their_time)

    def _hello(self, peer_key, status, their_time):
        name = self._book.name_of(peer_key)
        if name is not None:
            self._book.seen(name, self._clock.seconds())
            self.board.hello(name, status, their_time)

    def _gone(self, peer_key):
        # Before the board tells the tracker: its look-up may reach the contact at once,
        # which must start a handshake, not use the session that went silent.
        self._drop_session(peer_key)
        name = self._book.name_of(peer_key)
        if name is not None:
            self.board.gone(name)

    def _shown_changed(self, name, shown):
        self._tracker.set_connected(name, self.board.connected(name))
        self._on_shown(name, shown)
