"""Sessions with peers: who we have keys with, and getting keys when we don't.

For each peer: the *current* session (used to send), the *previous* one
(still accepted while datagrams sealed under it drain, until its keys retire),
a just-answered session waiting for the caller's confirmation, and our own
handshake attempt if one is running. Handshakes start on demand, when there is
something to send and no usable session, and again when a session should be
replaced: its keys are old (rekey), the peer says it does not know the session
(it restarted: UNKNOWN_SESSION), or it has not answered anything for a while.

An attempt sends its initiation to every candidate address at once; the first
authenticated response wins and fixes the peer's address. Later datagrams that
authenticate from another address move it (the peer roamed).
"""

import os
from dataclasses import dataclass, field

from twisted.logger import Logger

from kadchat import cookies, wire
from kadchat.channel import DEFAULT_LIMITS, Channel, ChannelError, ChannelStats, Limits
from kademlia.timers import Loop, cancel
from kadchat.handshake import (
    Handshake, HandshakeError, InitiationGuard, NotAContact, StaleInitiation, State, StaticIdentity)


@dataclass(frozen=True)
class SessionConfig:
    limits: Limits = DEFAULT_LIMITS
    handshake_retry: float = 1.0  # first retry; doubles each time
    handshake_attempts: int = 5  # initiations per attempt before giving up (~31 s)
    stale_after: float = 5.0  # sent without hearing back this long: handshake again
    confirm_within: float = 15.0  # an answered handshake not confirmed by then is dropped
    sweep_interval: float = 10.0
    budget: cookies.HandshakeBudget = cookies.HandshakeBudget()


@dataclass
class HandshakeStats:
    started: int = 0
    completed: int = 0
    answered: int = 0
    strangers: int = 0  # valid initiations from non-contacts, not answered
    stale: int = 0  # replayed or out-of-window initiations
    invalid: int = 0  # handshake messages that do not authenticate
    unknown_session_notices: int = 0
    cookies_sent: int = 0  # under load: initiations answered with a cookie reply
    cookies_received: int = 0  # our initiations that the callee asked to prove their address
    over_budget: int = 0  # initiations dropped unanswered: not even a cookie reply left


_INITIATION_BYTE = bytes([wire.INITIATION])


class _Session:
    def __init__(self, peer, handshake, addr, created):
        self.peer = peer
        self.handshake = handshake
        self.addr = addr
        self.created = created
        self.channel = None  # once keys exist
        self.initiation = None  # ours, the datagram (a cookie reply makes us send it again)


@dataclass
class _Attempt:
    sessions: list  # one per initiation sent: a late answer to an earlier one still counts
    tries: int = 0
    timer: object = None


@dataclass
class _Peer:
    key: bytes
    candidates: list = field(default_factory=list)
    current: _Session = None
    previous: _Session = None
    answered: _Session = None  # we responded; waiting for the caller's first datagram
    attempt: _Attempt = None
    first_unanswered: float = None  # when we first sent since last hearing from the peer
    cookies: dict = field(default_factory=dict)  # addr -> (cookie, when received), from the peer


class SessionManager:
    log = Logger()

    def __init__(self, clock, send, identity, is_contact, on_payload, on_ready, config=SessionConfig()):
        """`send(data, addr)` transmits; `on_payload(peer_key, payload)` gets each
        authenticated non-empty payload; `on_ready(peer_key)` is called when a
        session to the peer becomes usable for sending."""
        self._clock = clock
        self._send = send
        self._identity = StaticIdentity(identity)
        self._is_contact = is_contact
        self._on_payload = on_payload
        self._on_ready = on_ready
        self._config = config
        self._guard = InitiationGuard()
        self._gate = cookies.InitiationGate(clock.seconds, self._identity.public_key, config.budget)
        self._peers = {}
        self._by_index = {}  # our session index -> _Session
        self._sweeper = Loop(clock, config.sweep_interval, self._sweep)
        self.stats = ChannelStats()
        self.handshake_stats = HandshakeStats()

    def start(self):
        self._sweeper.start()

    def stop(self):
        stopped = self._sweeper.stop()
        for peer in self._peers.values():
            self._end_attempt(peer)
        self._peers.clear()
        self._by_index.clear()
        return stopped

    # -- what the messaging layer uses ---------------------------------------

    def set_candidates(self, peer_key, addrs):
        """Addresses to try when a handshake with the peer is needed. New ones
        get a handshake at once if an attempt is under way (say the relay was
        just added): waiting for the attempt's next backoff step could take seconds."""
        peer = self._peer(peer_key)
        added = [a for a in dict.fromkeys(addrs) if a not in peer.candidates]
        peer.candidates = list(dict.fromkeys(addrs))
        if added and peer.attempt is not None:
            peer.attempt.timer = cancel(peer.attempt.timer)
            self._initiate(peer)

    def has_session(self, peer_key):
        peer = self._peers.get(peer_key)
        return peer is not None and peer.current is not None

    def address_of(self, peer_key):
        """Where the current session with the peer sends to (None without one)."""
        peer = self._peers.get(peer_key)
        return peer.current.addr if peer is not None and peer.current is not None else None

    def send(self, peer_key, payload, expects_answer=True):
        """Seal and transmit over the current session. Returns False (and makes
        sure a handshake is under way) when there is no usable session yet.

        `expects_answer`: the peer will answer this (data, not an ack), so
        hearing nothing for `stale_after` means the session is dead.
        """
        peer = self._peer(peer_key)
        now = self._clock.seconds()
        session = peer.current
        if session is not None and session.channel.expired(now):
            self._forget(session)
            session = None
        if session is None:
            if not self._awaiting_confirmation(peer, now):  # that would make it ready
                self._start_attempt(peer)
            return False
        if session.channel.needs_rekey(now) or self._silent(peer, now):
            self._start_attempt(peer)  # meanwhile the current session still carries traffic
        self._send(session.channel.seal(payload, now), session.addr)
        if expects_answer and peer.first_unanswered is None:
            peer.first_unanswered = now
        return True

    def _awaiting_confirmation(self, peer, now):
        return peer.answered is not None and now - peer.answered.created <= self._config.confirm_within

    def _silent(self, peer, now):
        return peer.first_unanswered is not None and now - peer.first_unanswered > self._config.stale_after

    # -- datagrams from the socket -------------------------------------------

    def datagram_received(self, data, addr):
        if data[:1] == _INITIATION_BYTE and len(data) == wire.INITIATION_SIZE:
            # The handshake budget decides before any parsing: a flood must cost little.
            self._initiation_received(data, addr)
            return
        try:
            packet = wire.decode(data)
        except wire.WireError:
            self.stats.undecryptable += 1
            return
        if isinstance(packet, wire.Transport):
            self._transport_received(packet, addr)
        elif isinstance(packet, wire.Response):
            self._response_received(packet, addr)
        elif isinstance(packet, wire.CookieReply):
            self._cookie_reply_received(packet, addr)
        else:
            self._unknown_session_received(packet, addr)

    def _transport_received(self, packet, addr):
        session = self._by_index.get(packet.receiver_index)
        if session is None or session.channel is None:
            self.stats.undecryptable += 1
            self._send(wire.encode_unknown_session(packet.receiver_index), addr)
            return
        try:
            payload = session.channel.open(packet, self._clock.seconds())
        except ChannelError:
            return  # counted by the channel
        peer = session.peer
        session.addr = addr
        peer.first_unanswered = None
        if session.handshake.state is State.RESPONDED:
            session.handshake.confirm()
            peer.answered = None
            self._promote(session)
        if payload:
            self._on_payload(peer.key, payload)

    def _initiation_received(self, data, addr):
        verdict = self._gate.admit(data, addr)
        packet = wire.decode(data) if verdict in (cookies.ANSWER, cookies.COOKIE) else None  # sizes checked
        if verdict is not cookies.ANSWER:
            if verdict is cookies.COOKIE:
                self.handshake_stats.cookies_sent += 1
                self._send(self._gate.cookie_reply(packet, data, addr), addr)
            elif verdict is cookies.OVER_BUDGET:
                self.handshake_stats.over_budget += 1
            else:
                self.handshake_stats.invalid += 1
            return
        now = self._clock.seconds()
        try:
            repeated = self._guard.repeated_answer(data, packet, now)
            if repeated is not None:
                self._send(repeated, addr)
                return
            handshake, response = Handshake.respond(
                self._identity, packet, self._new_index(), now, self._is_contact, self._guard, data)
        except NotAContact:
            self.handshake_stats.strangers += 1
            return
        except StaleInitiation:
            self.handshake_stats.stale += 1
            return
        except HandshakeError:
            self.handshake_stats.invalid += 1
            return
        peer = self._peer(handshake.peer_key)
        if peer.answered is not None:
            self._forget(peer.answered)
        session = peer.answered = self._register(peer, handshake, addr, now)
        session.channel = Channel(handshake.keys, now, self.stats, self._config.limits)
        if addr not in peer.candidates:
            peer.candidates.insert(0, addr)
        self.handshake_stats.answered += 1
        self._send(response, addr)

    def _response_received(self, packet, addr):
        session = self._by_index.get(packet.receiver_index)
        if session is None or session.handshake.state is not State.INITIATED:
            return  # late duplicate of an answer we already took, or noise
        try:
            keys = session.handshake.receive_response(packet)
        except HandshakeError:
            self.handshake_stats.invalid += 1
            return
        now = self._clock.seconds()
        peer = session.peer
        session.addr = addr
        session.created = now
        session.channel = Channel(keys, now, self.stats, self._config.limits)
        peer.attempt.sessions.remove(session)
        self._end_attempt(peer)
        self.handshake_stats.completed += 1
        self._send(session.channel.seal(b"", now), addr)  # confirms the session to the callee
        self._promote(session)

    def _cookie_reply_received(self, packet, addr):
        """The callee is under load: prove our address with its cookie, at once."""
        session = self._by_index.get(packet.receiver_index)
        if session is None or session.handshake.state is not State.INITIATED:
            return
        try:
            cookie = cookies.open_cookie_reply(packet, session.peer.key, session.initiation)
        except cookies.CookieError:
            self.handshake_stats.invalid += 1
            return
        self.handshake_stats.cookies_received += 1
        session.peer.cookies[addr] = (cookie, self._clock.seconds())
        self._send(cookies.with_mac2(session.initiation, cookie), addr)

    def _with_cookie(self, peer, initiation, addr, now):
        """`initiation` with mac2 when the peer gave us a cookie for `addr` lately."""
        cookie, received = peer.cookies.get(addr, (None, None))
        if cookie is None or now - received >= self._config.budget.cookie_lifetime:
            peer.cookies.pop(addr, None)
            return initiation
        return cookies.with_mac2(initiation, cookie)

    def _unknown_session_received(self, packet, addr):
        for peer in list(self._peers.values()):
            for session in (peer.current, peer.previous):
                if (session is not None and session.addr == addr
                        and session.channel.keys.remote_index == packet.receiver_index):
                    self.handshake_stats.unknown_session_notices += 1
                    self._forget(session)
                    self._start_attempt(peer)
                    return

    # -- handshakes ------------------------------------------------------------

    def _start_attempt(self, peer):
        if peer.attempt is None:
            peer.attempt = _Attempt(sessions=[])
            self._initiate(peer)

    def _initiate(self, peer):
        attempt = peer.attempt
        if attempt.tries >= self._config.handshake_attempts:
            self.log.info("no answer from {peer} after {tries} handshakes", peer=peer.key[:4].hex(),
                          tries=attempt.tries)
            self._end_attempt(peer)
            return
        now = self._clock.seconds()
        try:
            handshake, initiation = Handshake.initiate(self._identity, peer.key, self._new_index(), now)
        except HandshakeError:
            self.handshake_stats.invalid += 1
            self._end_attempt(peer)
            return
        session = self._register(peer, handshake, None, now)
        session.initiation = initiation = cookies.with_mac1(initiation, peer.key)
        attempt.sessions.append(session)
        attempt.tries += 1
        self.handshake_stats.started += 1
        addrs = list(peer.candidates)
        for session in (peer.current, peer.previous):
            if session is not None and session.addr not in addrs:
                addrs.append(session.addr)
        for addr in addrs:
            self._send(self._with_cookie(peer, initiation, addr, now), addr)
        delay = self._config.handshake_retry * 2 ** (attempt.tries - 1)
        attempt.timer = self._clock.callLater(delay, self._initiate, peer)

    def _end_attempt(self, peer):
        attempt, peer.attempt = peer.attempt, None
        if attempt is None:
            return
        cancel(attempt.timer)
        for session in attempt.sessions:
            session.handshake.fail()
            self._by_index.pop(session.handshake.local_index, None)

    # -- bookkeeping -------------------------------------------------------------

    def _promote(self, session):
        """`session` is confirmed: it becomes current, the current one previous."""
        peer = session.peer
        if peer.previous is not None:
            self._forget(peer.previous)
        peer.previous, peer.current = peer.current, session
        peer.first_unanswered = None
        self.log.debug("session {index} with {peer} ready", index=session.handshake.local_index,
                       peer=peer.key[:4].hex())
        self._on_ready(peer.key)

    def _forget(self, session):
        peer = session.peer
        self._by_index.pop(session.handshake.local_index, None)
        if peer.current is session:
            peer.current = None
        if peer.previous is session:
            peer.previous = None
        if peer.answered is session:
            peer.answered = None

    def _register(self, peer, handshake, addr, now):
        session = _Session(peer, handshake, addr, now)
        self._by_index[handshake.local_index] = session
        return session

    def _new_index(self):
        while True:
            index = int.from_bytes(os.urandom(4), "big")
            if index not in self._by_index:
                return index

    def _peer(self, key):
        peer = self._peers.get(key)
        if peer is None:
            peer = self._peers[key] = _Peer(key)
        return peer

    def _sweep(self):
        """Drop retired sessions and answered handshakes nobody confirmed."""
        now = self._clock.seconds()
        for key, peer in list(self._peers.items()):
            for session in (peer.current, peer.previous):
                if session is not None and session.channel.expired(now):
                    self._forget(session)
            if peer.answered is not None and not self._awaiting_confirmation(peer, now):
                peer.answered.handshake.fail()
                self._forget(peer.answered)
            if not (peer.current or peer.previous or peer.answered or peer.attempt or peer.candidates):
                del self._peers[key]
