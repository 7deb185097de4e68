"""Our side of handshakes: initiations towards a peer until one is answered.

An attempt sends an initiation to every address the peer may be at (its
candidates, and where its sessions were) at once, and again after
`handshake_retry` seconds, doubling, `handshake_attempts` times in all; an
answer to any of them counts, even a late one to an earlier initiation. A
callee under load answers with a cookie reply instead (kadchat.cookies): the
initiation goes to that address again at once with the cookie's mac2, and so
do later ones while the cookie lasts.

kadchat.sessions decides when attempts start and end (its per-peer state
machine); this module only runs them.
"""

from dataclasses import dataclass, field

from twisted.logger import Logger

from kadchat import cookies
from kadchat.handshake import Handshake, HandshakeError, State
from kademlia.timers import cancel


@dataclass
class Attempt:
    sessions: list = field(default_factory=list)  # one per initiation sent
    tries: int = 0
    timer: object = None


class Initiator:
    log = Logger()

    def __init__(self, clock, send, identity, index, config, stats, gave_up):
        """`index` registers sessions (`fresh()`, `register(peer, handshake, addr, now)`,
        `discard(session)`, `get(local_index)`); `gave_up(peer)` is called when an
        attempt ran out of tries."""
        self._clock = clock
        self._send = send
        self._identity = identity
        self._index = index
        self._config = config
        self._stats = stats
        self._gave_up = gave_up

    def start(self, peer):
        peer.attempt = Attempt()
        self._initiate(peer)

    def hurry(self, peer):
        """New candidates: initiate now rather than at the next backoff step."""
        if peer.attempt is not None:
            peer.attempt.timer = cancel(peer.attempt.timer)
            self._initiate(peer)

    def end(self, peer, keep=None):
        """Stop the attempt; its sessions are unregistered, but `keep` (the answered one)."""
        attempt, peer.attempt = peer.attempt, None
        if attempt is None:
            return
        cancel(attempt.timer)
        for session in attempt.sessions:
            if session is not keep:
                session.handshake.fail()
                self._index.discard(session)

    def cookie_reply_received(self, packet, addr):
        """The callee is under load: prove our address with its cookie, at once."""
        session = self._index.get(packet.receiver_index)
        if session is None or session.handshake.state is not State.INITIATED:
            return
        try:
            cookie = cookies.open_cookie_reply(packet, session.peer.key, session.initiation)
        except cookies.CookieError:
            self._stats.invalid += 1
            return
        self._stats.cookies_received += 1
        session.peer.cookies[addr] = (cookie, self._clock.seconds())
        self._send(cookies.with_mac2(session.initiation, cookie), addr)

    def _initiate(self, peer):
        attempt = peer.attempt
        if attempt.tries >= self._config.handshake_attempts:
            self.log.info("no answer from {peer} after {tries} handshakes", peer=peer.key[:4].hex(),
                          tries=attempt.tries)
            self._gave_up(peer)
            return
        now = self._clock.seconds()
        try:
            handshake, initiation = Handshake.initiate(self._identity, peer.key, self._index.fresh(), now)
        except HandshakeError:
            self._stats.invalid += 1
            self._gave_up(peer)
            return
        session = self._index.register(peer, handshake, None, now)
        session.initiation = initiation = cookies.with_mac1(initiation, peer.key)
        attempt.sessions.append(session)
        attempt.tries += 1
        self._stats.started += 1
        addrs = list(peer.candidates)
        for old in (peer.current, peer.previous):
            if old is not None and old.addr not in addrs:
                addrs.append(old.addr)
        for addr in addrs:
            self._send(self._with_cookie(peer, initiation, addr, now), addr)
        delay = self._config.handshake_retry * 2 ** (attempt.tries - 1)
        attempt.timer = self._clock.callLater(delay, self._initiate, peer)

    def _with_cookie(self, peer, initiation, addr, now):
        """`initiation` with mac2 when the peer gave us a cookie for `addr` lately."""
        cookie, received = peer.cookies.get(addr, (None, None))
        if cookie is None or now - received >= self._config.budget.cookie_lifetime:
            peer.cookies.pop(addr, None)
            return initiation
        return cookies.with_mac2(initiation, cookie)
