"""Live presence over sessions: hello when a session comes up, keep-alives, goodbye.

Both ends of a new session say hello with their status (online or away) and
their clock's time; while the session lives each repeats it every `keepalive`
seconds, which also keeps NAT mappings open. A contact not heard from for
`gone_after` seconds (three keep-alives) is gone (crashed, or its network went away); a clean
exit says goodbye (status offline) first. This is what lets a contact see us
arrive and leave within a second or two instead of at its next DHT look-up.

A hello is a datagram, and a burst (a hundred contacts' handshakes, hellos and
DHT answers at once after a restart) can overflow a busy receiver's socket.
So a contact's first hello is answered with ours (it may not have heard it),
and a hello of ours that nothing answers is said again at every check, for
`gone_after` seconds: otherwise a contact whose hello we lost would only show
connected at its next keep-alive. And the goodbye goes to every contact we said
hello to, heard or not: one whose hellos we lost shows us connected all the same.
"""

from kademlia.timers import Loop

ONLINE, AWAY, OFFLINE = "online", "away", "offline"
KEEPALIVE = 15.0
GONE_AFTER = 3 * KEEPALIVE
CHECKS_PER_KEEPALIVE = 3  # how finely silence is measured: gone 45 to 50 s after the last word
GOODBYE_COPIES = 2  # datagrams get lost; a goodbye is sent once per copy, no answer awaited


class Liveness:
    def __init__(self, clock, send_presence, on_hello, on_gone, keepalive=KEEPALIVE, gone_after=GONE_AFTER):
        """`send_presence(peer_key, status, time) -> bool` sends over the session (False: none
        is up); `on_hello(peer_key, status, their_time)` and `on_gone(peer_key)` tell what we heard."""
        self._clock = clock
        self._send = send_presence
        self._on_hello = on_hello
        self._on_gone = on_gone
        self._keepalive = keepalive
        self._patience = gone_after
        self._loop = Loop(clock, keepalive / CHECKS_PER_KEEPALIVE, self._check)
        self._heard = {}  # peer key -> when we last heard it say hello
        self._said = {}  # peer key -> when we last told it our status
        self._unanswered = {}  # peer key -> since when our hello waits for the peer's
        self.status = ONLINE
        self._leaving = False  # after goodbye() we say nothing more

    def start(self):
        self._leaving = False
        self._loop.start()

    def stop(self):
        return self._loop.stop()

    def set_status(self, status):
        """Our own status changed: every live contact hears it now."""
        self.status = status
        self.announce()

    def announce(self):
        """Tell every live contact our status now (say, from a new address)."""
        for peer in list(self._heard):
            self._tell(peer)

    def session_ready(self, peer_key):
        if peer_key not in self._heard:
            self._unanswered.setdefault(peer_key, self._clock.seconds())
        self._tell(peer_key)

    def _tell(self, peer_key):
        if self._leaving:  # a session that comes up while we stop must not undo our goodbye
            return
        self._said[peer_key] = now = self._clock.seconds()
        self._send(peer_key, self.status, now)

    def presence_received(self, peer_key, status, their_time):
        self._unanswered.pop(peer_key, None)
        if status == OFFLINE:
            self._said.pop(peer_key, None)
            if self._heard.pop(peer_key, None) is not None:
                self._on_gone(peer_key)
            return
        first = peer_key not in self._heard
        self._heard[peer_key] = self._clock.seconds()
        self._on_hello(peer_key, status, their_time)
        if first:
            self._tell(peer_key)  # the answer: it may not have heard our hello

    def goodbye(self):
        """We are leaving: tell every contact we told we are here (it may show us
        connected though we never heard its hello: lost, or sealed for a session we lack)."""
        self._leaving = True
        now = self._clock.seconds()
        for peer in dict.fromkeys([*self._heard, *self._said]):
            for _ in range(GOODBYE_COPIES):
                self._send(peer, OFFLINE, now)
        self._heard.clear()
        self._said.clear()
        self._unanswered.clear()

    def forget(self, peer_key):
        """The peer is no longer a contact: tell it nothing more (and do not report it gone)."""
        self._heard.pop(peer_key, None)
        self._said.pop(peer_key, None)
        self._unanswered.pop(peer_key, None)

    def is_live(self, peer_key):
        return peer_key in self._heard

    def _check(self):
        now = self._clock.seconds()
        for peer, since in list(self._unanswered.items()):
            if now - since > self._patience:
                del self._unanswered[peer]  # no session any more, or nobody listening
            else:
                self._tell(peer)
        for peer, heard in list(self._heard.items()):
            if now - heard > self._patience:
                del self._heard[peer]
                self._said.pop(peer, None)
                self._on_gone(peer)
            elif now - self._said.get(peer, 0) >= self._keepalive - 1e-6:  # timers land on float sums
                self._tell(peer)
