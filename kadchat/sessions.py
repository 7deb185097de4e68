"""Sessions with peers: who we have keys with, and getting keys when we don't.

For each peer: the *current* session (used to send), the *previous* one
(still accepted while datagrams sealed under it drain, until its keys retire),
the sessions we just answered, waiting for the caller's confirmation, and our
own handshake attempt if one is running. Handshakes start on demand, when there is
something to send and no usable session, and again when a session should be
replaced: its keys are old (rekey), the peer says it does not know the session
(it restarted: UNKNOWN_SESSION), or it has not answered anything for a while.

An UNKNOWN_SESSION counts only with the reset token the peer gave us for that
session (a RESET record, kadchat.wire): a keyed hash of its index under a key
its identity derives, which it can compute again after the restart that lost
the session, and nobody else can. A forged notice is ignored (and one that
comes before the peer's RESET did is honoured, rate-limited).

An attempt (kadchat.initiator) sends its initiation to every candidate address
at once; the first authenticated response wins and fixes the peer's address.
Later datagrams that authenticate from another address move it (the peer
roamed). Since a response to any initiation of an attempt counts, the callee
holds every answer until the caller confirms one (the older ones then go): after
a restart an attempt sends several within a second (whereabouts, the look-up,
the relay), and had the callee kept only its newest answer, the caller could
confirm one it had forgotten, leaving the two ends on different sessions, each
side's datagrams (a goodbye among them) unreadable at the other until a new
handshake. When to start and end attempts, and which session sends, is each
peer's `PeerMachine`: its table says it all.
"""

import enum
import hmac
import os
from hashlib import blake2b
from dataclasses import dataclass, field

from twisted.logger import Logger

from kadchat import cookies, wire
from kadchat.channel import DEFAULT_LIMITS, Channel, ChannelError, ChannelStats, Limits
from kadchat.handshake import (
    Handshake, HandshakeError, InitiationGuard, NotAContact, StaleInitiation, State, StaticIdentity)
from kadchat.initiator import Attempt, Initiator
from kadchat.replaystore import LatestInitiations
from kademlia.timers import Loop


@dataclass(frozen=True)
class SessionConfig:
    limits: Limits = DEFAULT_LIMITS
    handshake_retry: float = 1.0  # first retry; doubles each time
    handshake_attempts: int = 5  # initiations per attempt before giving up (~31 s)
    stale_after: float = 5.0  # sent without hearing back this long: handshake again
    confirm_within: float = 15.0  # an answered handshake not confirmed by then is dropped
    sweep_interval: float = 10.0
    budget: cookies.HandshakeBudget = cookies.HandshakeBudget()
    replay_path: str = None  # where the replay guard keeps what it answered (None: memory only)
    notice_interval: float = 30.0  # UNKNOWN_SESSION notices honoured per peer at most this often


@dataclass
class HandshakeStats:
    started: int = 0
    completed: int = 0
    answered: int = 0
    strangers: int = 0  # valid initiations from non-contacts, not answered
    stale: int = 0  # replayed or out-of-window initiations
    invalid: int = 0  # handshake messages that do not authenticate
    unknown_session_notices: int = 0
    forged_notices: int = 0  # UNKNOWN_SESSION without the session's reset token
    cookies_sent: int = 0  # under load: initiations answered with a cookie reply
    cookies_received: int = 0  # our initiations that the callee asked to prove their address
    over_budget: int = 0  # initiations dropped unanswered: not even a cookie reply left


_INITIATION_BYTE = bytes([wire.INITIATION])
_TRANSPORT_BYTE = bytes([wire.TRANSPORT])


class _Session:
    def __init__(self, peer, handshake, addr, created):
        self.peer = peer
        self.handshake = handshake
        self.addr = addr
        self.created = created
        self.channel = None  # once keys exist
        self.peer_reset = None  # the reset token the peer gave for this session (RESET)
        self.initiation = None  # ours, the datagram (a cookie reply makes us send it again)


class _SessionIndex(dict):
    """Our session index -> _Session, for every session and attempt of every peer."""

    def fresh(self):
        while True:
            index = int.from_bytes(os.urandom(4), "big")
            if index not in self:
                return index

    def register(self, peer, handshake, addr, now):
        session = self[handshake.local_index] = _Session(peer, handshake, addr, now)
        return session

    def discard(self, session):
        self.pop(session.handshake.local_index, None)


class PeerState(enum.Enum):
    IDLE = "idle"  # no keys to send with, no handshake of ours out
    HANDSHAKING = "handshaking"  # no keys; our initiations are out
    AWAITING_CONFIRMATION = "awaiting confirmation"  # we answered the peer's; its first datagram confirms
    ESTABLISHED = "established"  # a current session sends
    REKEYING = "rekeying"  # a current session sends while our new handshake is out


class PeerEvent(enum.Enum):
    WANTED = "new keys wanted"  # something to send and no session, old keys, a silent peer...
    ANSWERED = "answered"  # we responded to the peer's initiation
    CONFIRMED = "confirmed"  # the peer's first datagram under the keys we answered with
    UNCONFIRMED = "unconfirmed"  # ... did not come within `confirm_within`
    RESPONSE = "response"  # the answer to our initiation
    GAVE_UP = "gave up"  # our initiations got no answer
    LOST = "lost"  # the current session is gone: keys retired, or the peer forgot it
    CALL_BACK = "call back"  # our answer may not get through its NAT: handshake towards it too


MAX_ANSWERS = 8  # unconfirmed answers held per peer (initiations of one attempt, and a few more)


class PeerMachine:
    """One peer's session state. `fire(event, session)` looks (state, event) up in
    TRANSITIONS: a new state and outputs, each a call `actions.<output>(peer, session)`."""

    def __init__(self, peer, actions):
        self.state = PeerState.IDLE
        self._peer = peer
        self._actions = actions

    def fire(self, event, session=None):
        try:
            self.state, outputs = self.TRANSITIONS[self.state, event]
        except KeyError:
            raise RuntimeError(f"{event.value} cannot happen while {self.state.value}") from None
        for output in outputs:
            getattr(self._actions, output)(self._peer, session)

    _I, _H, _A = PeerState.IDLE, PeerState.HANDSHAKING, PeerState.AWAITING_CONFIRMATION
    _E, _R = PeerState.ESTABLISHED, PeerState.REKEYING
    _ANSWER = ("hold_answer",)  # held beside older ones: the caller confirms one of them
    TRANSITIONS = {
        (_I, PeerEvent.WANTED): (_H, ("start_attempt",)),
        (_I, PeerEvent.ANSWERED): (_A, _ANSWER),
        (_I, PeerEvent.CONFIRMED): (_E, ("promote",)),  # (answered before the session was lost)
        (_I, PeerEvent.UNCONFIRMED): (_I, ("drop_answer",)),
        (_H, PeerEvent.WANTED): (_H, ()),
        (_H, PeerEvent.ANSWERED): (_H, _ANSWER),
        (_H, PeerEvent.CONFIRMED): (_R, ("promote",)),  # ours may still finish: it replaces theirs
        (_H, PeerEvent.UNCONFIRMED): (_H, ("drop_answer",)),
        (_H, PeerEvent.RESPONSE): (_E, ("end_attempt", "promote")),
        (_H, PeerEvent.GAVE_UP): (_I, ("end_attempt",)),
        (_A, PeerEvent.WANTED): (_A, ()),  # the confirmation will make it ready
        (_A, PeerEvent.ANSWERED): (_A, _ANSWER),
        (_A, PeerEvent.CONFIRMED): (_E, ("promote",)),
        (_A, PeerEvent.UNCONFIRMED): (_I, ("drop_answer",)),
        (_A, PeerEvent.CALL_BACK): (_H, ("start_attempt",)),  # the held answer may still be confirmed
        (_I, PeerEvent.CALL_BACK): (_H, ("start_attempt",)),
        (_H, PeerEvent.CALL_BACK): (_H, ()),
        (_E, PeerEvent.CALL_BACK): (_E, ()),
        (_R, PeerEvent.CALL_BACK): (_R, ()),
        (_E, PeerEvent.WANTED): (_R, ("start_attempt",)),
        (_E, PeerEvent.ANSWERED): (_E, _ANSWER),
        (_E, PeerEvent.CONFIRMED): (_E, ("promote",)),
        (_E, PeerEvent.UNCONFIRMED): (_E, ("drop_answer",)),
        (_E, PeerEvent.LOST): (_I, ("forget",)),
        (_R, PeerEvent.WANTED): (_R, ()),
        (_R, PeerEvent.ANSWERED): (_R, _ANSWER),
        (_R, PeerEvent.CONFIRMED): (_R, ("promote",)),
        (_R, PeerEvent.UNCONFIRMED): (_R, ("drop_answer",)),
        (_R, PeerEvent.RESPONSE): (_E, ("end_attempt", "promote")),
        (_R, PeerEvent.GAVE_UP): (_E, ("end_attempt",)),
        (_R, PeerEvent.LOST): (_H, ("forget",)),
    }


@dataclass
class _Peer:
    key: bytes
    machine: PeerMachine = None
    candidates: list = field(default_factory=list)
    current: _Session = None
    previous: _Session = None
    answers: list = field(default_factory=list)  # we responded, oldest first; waiting for the caller's first datagram
    attempt: Attempt = None
    first_unanswered: float = None  # when we first sent since last hearing from the peer
    cookies: dict = field(default_factory=dict)  # addr -> (cookie, when received), from the peer
    notice_at: float = None  # when we last acted on an UNKNOWN_SESSION notice


class SessionManager:
    log = Logger()

    def __init__(self, clock, send, identity, is_contact, on_payload, on_ready, config=SessionConfig()):
        """`send(data, addr)` transmits; `on_payload(peer_key, payload)` gets each
        authenticated non-empty payload; `on_ready(peer_key)` is called when a
        session to the peer becomes usable for sending."""
        self._clock = clock
        self._send = send
        self._identity = StaticIdentity(identity)
        self._reset_key = blake2b(bytes(identity), digest_size=32, person=b"kadchat-reset").digest()
        self._is_contact = is_contact
        self._on_payload = on_payload
        self._on_ready = on_ready
        self._config = config
        self._guard = InitiationGuard(latest=LatestInitiations(config.replay_path))
        self._gate = cookies.InitiationGate(clock.seconds, self._identity.public_key, config.budget)
        self._peers = {}
        self._by_index = _SessionIndex()
        self._sweeper = Loop(clock, config.sweep_interval, self._sweep)
        self.stats = ChannelStats()
        self.handshake_stats = HandshakeStats()
        self._initiator = Initiator(clock, send, self._identity, self._by_index, config, self.handshake_stats,
                                    lambda peer: peer.machine.fire(PeerEvent.GAVE_UP))
        # Told (peer key, address) when we answer a peer we have no session with yet.
        self.on_answered = lambda peer_key, addr: None
        self._leaving = False  # after leave(): no new sessions

    def start(self):
        self._leaving = False
        self._sweeper.start()

    def leave(self):
        """We are shutting down (after our goodbye, kadchat.liveness): no new sessions, either
        way. A contact that heard the goodbye and writes at once must not get a session with
        us that ends as we exit: what it writes then belongs in a dead drop."""
        self._leaving = True
        for peer in self._peers.values():
            self._initiator.end(peer)

    def stop(self):
        stopped = self._sweeper.stop()
        for peer in self._peers.values():
            self._initiator.end(peer)
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
        if added:
            self._initiator.hurry(peer)

    def call_back(self, peer_key, addrs):
        """The peer called us through an introducer and may not hear our answer (its NAT has
        not seen our address): handshake towards it at `addrs` too, even while our answer
        waits for its confirmation."""
        peer = self._peer(peer_key)
        added = [a for a in dict.fromkeys(addrs) if a not in peer.candidates]
        peer.candidates = list(dict.fromkeys([*addrs, *peer.candidates]))
        attempting = peer.attempt is not None
        peer.machine.fire(PeerEvent.CALL_BACK)
        if attempting and added:
            self._initiator.hurry(peer)

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
        session = self._usable(peer, now)
        if session is None:
            return False
        if session.channel.needs_rekey(now) or self._silent(peer, now):
            peer.machine.fire(PeerEvent.WANTED)  # meanwhile the current session still carries traffic
        self._send(session.channel.seal(payload, now), session.addr)
        if expects_answer and peer.first_unanswered is None:
            peer.first_unanswered = now
        return True

    def probe(self, peer_key, addrs):
        """An empty datagram over the current session to each of `addrs`: one that gets
        through moves the peer's end of the session there (a relayed session going direct
        once hole punching works). False without a current session."""
        peer = self._peers.get(peer_key)
        now = self._clock.seconds()
        if peer is None or peer.current is None or peer.current.channel.expired(now):
            return False
        for addr in addrs:
            self._send(peer.current.channel.seal(b"", now), addr)
        return True

    def connect(self, peer_key):
        """Make sure a session with the peer is up or on its way, with nothing to send yet
        (live presence wants one with every contact it can reach)."""
        self._usable(self._peer(peer_key), self._clock.seconds())

    def drop(self, peer_key):
        """The peer is gone (kadchat.liveness: a goodbye, or silence): forget the current
        session, so that reaching it again starts a handshake instead of sealing into the void."""
        peer = self._peers.get(peer_key)
        if peer is not None and peer.current is not None:
            peer.machine.fire(PeerEvent.LOST, peer.current)

    def forget_peer(self, peer_key):
        """The peer is no longer a contact: end our attempt, forget its sessions and addresses."""
        peer = self._peers.pop(peer_key, None)
        if peer is None:
            return
        self._initiator.end(peer)
        for session in (peer.current, peer.previous, *peer.answers):
            if session is not None:
                session.handshake.fail()
                self.forget(peer, session)

    def _usable(self, peer, now):
        """The current session, or None after making sure a handshake is under way."""
        if peer.current is not None and peer.current.channel.expired(now):
            peer.machine.fire(PeerEvent.LOST, peer.current)
        if peer.current is None:
            self._expire_answers(peer, now)
            peer.machine.fire(PeerEvent.WANTED)
        return peer.current

    def _silent(self, peer, now):
        return peer.first_unanswered is not None and now - peer.first_unanswered > self._config.stale_after

    # -- datagrams from the socket -------------------------------------------

    def is_live_traffic(self, data, addr):
        """A TRANSPORT naming one of our keyed sessions, from where its peer last spoke: the
        DHT's per-IP budget for strangers need not count it (it still has to open)."""
        if data[:1] != _TRANSPORT_BYTE or len(data) < wire.TRANSPORT_HEADER_SIZE:
            return False
        session = self._by_index.get(int.from_bytes(data[1:5], "big"))
        return session is not None and session.channel is not None and session.addr == addr

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
            self._initiator.cookie_reply_received(packet, addr)
        else:
            self._unknown_session_received(packet, addr)

    def _transport_received(self, packet, addr):
        session = self._by_index.get(packet.receiver_index)
        if session is None or session.channel is None:
            self.stats.undecryptable += 1
            token = self._reset_token(packet.receiver_index)
            self._send(wire.encode_unknown_session(packet.receiver_index, token), addr)
            return
        try:
            payload = session.channel.open(packet, self._clock.seconds())
        except ChannelError:
            return  # counted by the channel
        peer = session.peer
        session.addr = addr
        peer.first_unanswered = None
        self._gate.vouch(addr)
        if session.handshake.state is State.RESPONDED:
            session.handshake.confirm()
            peer.machine.fire(PeerEvent.CONFIRMED, session)
        if wire.is_reset(payload):
            session.peer_reset = bytes(payload[1:])
        elif payload:
            self._on_payload(peer.key, payload)

    def _initiation_received(self, data, addr):
        if self._leaving:
            return
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
                self._identity, packet, self._by_index.fresh(), now, self._is_contact, self._guard, data)
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
        session = self._by_index.register(peer, handshake, addr, now)
        session.channel = Channel(handshake.keys, now, self.stats, self._config.limits)
        peer.machine.fire(PeerEvent.ANSWERED, session)
        if addr not in peer.candidates:
            peer.candidates.insert(0, addr)
        self.handshake_stats.answered += 1
        self._send(response, addr)
        if peer.current is None:
            self.on_answered(peer.key, addr)

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
        session.addr = addr
        session.created = now
        session.channel = Channel(keys, now, self.stats, self._config.limits)
        self.handshake_stats.completed += 1
        self._send(session.channel.seal(b"", now), addr)  # confirms the session to the callee
        session.peer.machine.fire(PeerEvent.RESPONSE, session)

    def _reset_token(self, local_index):
        return blake2b(local_index.to_bytes(4, "big"), digest_size=wire.RESET_TOKEN_SIZE, key=self._reset_key).digest()

    def _unknown_session_received(self, packet, addr):
        # Only with the session's reset token (issue 12, 4). Even then it only asks
        # for new keys, at most once per `notice_interval` per peer, while the
        # session keeps carrying traffic until they are up.
        now = self._clock.seconds()
        for peer in list(self._peers.values()):
            session = peer.current
            if (session is not None and session.addr == addr
                    and session.channel.keys.remote_index == packet.receiver_index):
                # Before its RESET arrives (within a round trip, unless lost), a notice is taken
                # on trust as before: the peer may have restarted before it could send one.
                if session.peer_reset is not None and not hmac.compare_digest(session.peer_reset, packet.token):
                    self.handshake_stats.forged_notices += 1
                    return
                if peer.notice_at is not None and now - peer.notice_at < self._config.notice_interval:
                    return
                peer.notice_at = now
                self.handshake_stats.unknown_session_notices += 1
                peer.machine.fire(PeerEvent.WANTED)
                return

    # -- the outputs of the peers' machines (PeerMachine.TRANSITIONS names them) --

    def start_attempt(self, peer, _):
        if not self._leaving:  # leaving: the machine waits for an answer that never comes
            self._initiator.start(peer)

    def end_attempt(self, peer, answered):
        self._initiator.end(peer, keep=answered)

    def hold_answer(self, peer, session):
        peer.answers.append(session)
        if len(peer.answers) > MAX_ANSWERS:
            self.drop_answer(peer, peer.answers[0])

    def drop_answer(self, peer, session):
        """`session` (and every answer held before it) will not be confirmed."""
        for old in peer.answers[:peer.answers.index(session) + 1]:
            old.handshake.fail()
            self.forget(peer, old)

    def promote(self, peer, session):
        """`session` is confirmed: it becomes current, the current one previous. The answers
        held before it are not going to be confirmed (the caller took this one)."""
        if session in peer.answers:
            older = peer.answers[:peer.answers.index(session)]
            if older:
                self.drop_answer(peer, older[-1])
            peer.answers.remove(session)
        if peer.previous is not None:
            self.forget(peer, peer.previous)
        peer.previous, peer.current = peer.current, session
        peer.first_unanswered = None
        token = self._reset_token(session.handshake.local_index)
        self._send(session.channel.seal(wire.encode_reset(token), self._clock.seconds()), session.addr)
        self.log.debug("session {index} with {peer} ready", index=session.handshake.local_index,
                       peer=peer.key[:4].hex())
        self._on_ready(peer.key)

    def forget(self, peer, session):
        self._by_index.discard(session)
        if peer.current is session:
            peer.current = None
        if peer.previous is session:
            peer.previous = None
        if session in peer.answers:
            peer.answers.remove(session)

    # -- bookkeeping -------------------------------------------------------------

    def _peer(self, key):
        peer = self._peers.get(key)
        if peer is None:
            peer = self._peers[key] = _Peer(key)
            peer.machine = PeerMachine(peer, self)
        return peer

    def _expire_answers(self, peer, now):
        """The newest answer waited `confirm_within` in vain: so did every older one."""
        if peer.answers and now - peer.answers[-1].created > self._config.confirm_within:
            peer.machine.fire(PeerEvent.UNCONFIRMED, peer.answers[-1])

    def _sweep(self):
        """Drop retired sessions and answered handshakes nobody confirmed."""
        now = self._clock.seconds()
        for key, peer in list(self._peers.items()):
            if peer.previous is not None and peer.previous.channel.expired(now):
                self.forget(peer, peer.previous)
            if peer.current is not None and peer.current.channel.expired(now):
                peer.machine.fire(PeerEvent.LOST, peer.current)
            self._expire_answers(peer, now)
            if peer.machine.state is PeerState.IDLE and not (peer.previous or peer.answers or peer.candidates):
                del self._peers[key]
