"""Reliable chat messages over sessions: ids, acks, retransmission, order, receipts.

A message gets a random 16-byte id and the next `seq` of its conversation,
and is stored in history and outbox before anything is sent (state `sending`).
Its UTF-8 text travels in fragments of at most 1 KiB, one per datagram. The
receiver acknowledges each fragment it holds with a bitmap; once it has them
all it stores the message durably and only then sends the complete bitmap, so
`delivered` means "in the peer's history". `sent` means every fragment went
out at least once. Unacknowledged fragments are sent again after a timeout
computed from the measured round trip (RFC 6298), doubled for each timeout in
a row without any acknowledgement from the peer (as TCP backs off: while the
peer acknowledges something, a missing fragment is plain loss, not a sign to
slow down). A peer that acknowledges nothing for `give_up_after` seconds
counts as unreachable and its messages become `failed`; they stay in the
outbox: `peer_available` or `retry` sends them again, and so does any new
message to that peer, which must not overtake them.

Order: the receiver shows messages in `seq` order, holding (stored, unshown)
any that arrive ahead of a gap. Each fragment carries `base`, the sender's
lowest unacknowledged seq: everything below it was acknowledged, hence
stored, so the receiver never waits for it. Duplicates (the same id again,
say after a lost ack) are acknowledged again and not shown twice.
"""

import dataclasses
import os
from collections import deque
from dataclasses import dataclass
from typing import Protocol

from twisted.logger import Logger

from kadchat import wire
from kadchat.errors import UserError
from kadchat.history import StoredMessage
from kadchat.incoming import Incoming, Partial
from kadchat.model import MessageState
from kadchat.sessions import SessionConfig, SessionManager
from kademlia.rtt import RTTEstimator
from kademlia.timers import cancel


@dataclass(frozen=True)
class MessagingConfig:
    sessions: SessionConfig = SessionConfig()
    window: int = 64  # fragments in flight per peer
    max_ahead: int = 256  # messages sent past the oldest unacknowledged one (bounds what the peer holds)
    initial_rto: float = 1.0
    min_rto: float = 0.2
    max_rto: float = 30.0
    give_up_after: float = 120.0  # seconds without any acknowledgement: `failed`
    max_partial: int = 64  # incomplete incoming messages kept per peer


class _Pending:
    """An outgoing message in flight: which fragments are acknowledged, when each was sent."""

    def __init__(self, message, timestamp_us):
        self.message = message
        data = message.text.encode("utf-8")
        self.chunks = [data[i:i + wire.CHUNK_SIZE] for i in range(0, len(data), wire.CHUNK_SIZE)]
        self.count = len(self.chunks)
        self.timestamp_us = timestamp_us
        self.acked = 0  # bitmap of fragments the peer reported holding (this session)
        self.sent_at = [None] * self.count
        self.transmissions = [0] * self.count
        self.deadline = [0.0] * self.count
        self.announced_sent = message.state == MessageState.SENT


class _Outgoing:
    """One peer's unacknowledged messages: waiting (`queue`) or in flight, in seq order."""

    def __init__(self, rtt, rto):
        self.queue = deque()
        self.flight = {}  # id -> _Pending, insertion (= seq) order
        self.in_flight = 0  # fragments
        self.rto = rto
        self.rtt = rtt  # the peer's, kept while it has nothing in flight
        self.timer = None
        self.backoff = 0  # timeouts in a row without an acknowledgement
        self.last_progress = None  # when the peer last acknowledged anything


class EndpointListener(Protocol):
    """What `ChatEndpoint.subscribe` calls, after the endpoint's state settles."""

    def message_received(self, peer_key: bytes, message: StoredMessage) -> None:
        """A new incoming message, once, in conversation order, after it is stored."""

    def message_state(self, message_id: bytes, state: MessageState) -> None:
        """An outgoing message moved to `state` (sending, sent, delivered, failed)."""

    def session_ready(self, peer_key: bytes) -> None:
        """A new session with the peer is usable (its outbox is on its way)."""

    def presence_received(self, peer_key: bytes, status: str, their_time: float) -> None:
        """The peer's hello, keep-alive or goodbye (kadchat.liveness) over the session."""

    def secret_received(self, peer_key: bytes, secret: bytes) -> None:
        """The peer's presence secret (kadchat.presencesecret) over the session."""


class ChatEndpoint:
    """Chat with contacts over one datagram transport.

    `send(data, addr)` transmits a datagram; feed received chat datagrams to
    `datagram_received(data, addr)`. `is_contact(public_key) -> bool` decides
    who may open a session. Listeners (`subscribe`) are `EndpointListener`s.
    """

    log = Logger()

    def __init__(self, clock, send, identity, is_contact, history, config=MessagingConfig()):
        self._clock = clock
        self._history = history
        self._config = config
        self.sessions = SessionManager(clock, send, identity, is_contact, self._payload_received,
                                       self._session_ready, config.sessions)
        self._outgoing = {}
        self._rtt = {}  # peer -> RTTEstimator
        self._incoming = {}
        self._listeners = []
        self._events = deque()  # fn(listener), called once our own state is consistent
        self.record_handlers = {}  # record type -> fn(peer_key, payload): records other parts own

    def start(self):
        self.sessions.start()

    def stop(self):
        for out in self._outgoing.values():
            cancel(out.timer)
        self._outgoing.clear()
        self._incoming.clear()
        return self.sessions.stop()

    def subscribe(self, listener: EndpointListener):
        self._listeners.append(listener)

    def has_session(self, peer_key):
        """A session with the peer is up (messages to it go out at once)."""
        return self.sessions.has_session(peer_key)

    def route_of(self, peer_key):
        """The address (plain or a traversal route) the session with the peer uses, else None."""
        return self.sessions.address_of(peer_key)

    def probe_paths(self, peer_key, addrs):
        """Try `addrs` under the current session (kadchat.sessions.SessionManager.probe)."""
        return self.sessions.probe(peer_key, addrs)

    def leave(self):
        """We are shutting down: no new sessions (kadchat.sessions.SessionManager.leave)."""
        self.sessions.leave()

    def drop_session(self, peer_key):
        """The peer is gone (kadchat.liveness): the next message or reach needs a new session."""
        self.sessions.drop(peer_key)

    def call_back(self, peer_key, addrs):
        """`SessionManager.call_back`."""
        self.sessions.call_back(peer_key, addrs)
        self._tell_listeners()

    def forget_peer(self, peer_key):
        """The peer is no longer a contact: its sessions, attempts and addresses go."""
        self.sessions.forget_peer(peer_key)

    def send_secret(self, peer_key, secret):
        """Our presence secret over the current session; False if none is up."""
        return self.sessions.send(peer_key, wire.encode_secret(wire.SecretNote(secret)), expects_answer=False)

    def send_presence(self, peer_key, status, time):
        """Our hello, keep-alive or goodbye over the current session; False if none is up."""
        note = wire.encode_presence(wire.PresenceNote(status, time))
        return self.sessions.send(peer_key, note, expects_answer=False)

    def send_record(self, peer_key, payload):
        """A record of a type in `record_handlers` over the current session, unacknowledged; False if none is up."""
        return self.sessions.send(peer_key, payload, expects_answer=False)

    def datagram_received(self, data, addr):
        self.sessions.datagram_received(data, addr)
        self._tell_listeners()

    # -- sending ---------------------------------------------------------------

    def send_message(self, peer_key, addrs, text):
        """Queue `text` for the peer, reachable at one of `addrs`; returns the message id."""
        size = len(text.encode("utf-8"))
        if not 0 < size <= wire.MAX_TEXT_BYTES:
            raise UserError(f"a message must have 1 to {wire.MAX_TEXT_BYTES} bytes of text, not {size}")
        self.sessions.set_candidates(peer_key, addrs)
        message = self._history.add_outgoing(peer_key, os.urandom(16), text, self._clock.seconds())
        self._notify_state(message.id, MessageState.SENDING)
        out = self._outgoing.get(peer_key)
        if out is None:
            self._activate(peer_key)  # loads the outbox, this message included
        else:
            out.queue.append(_Pending(message, _micros(message.timestamp)))
            self._fill_window(peer_key, out)
        self._tell_listeners()
        return message.id

    def peer_available(self, peer_key, addrs):
        """The peer's presence showed up at `addrs`: open a session and send what waits for it."""
        self.sessions.set_candidates(peer_key, addrs)
        self.sessions.connect(peer_key)
        self._kick(peer_key)
        self._tell_listeners()

    def retry(self, message_id):
        """Send an undelivered (e.g. failed) message again now, with those before it."""
        message = self._history.get(message_id)
        if message is not None and message.outgoing and message.state != MessageState.DELIVERED:
            self._kick(message.peer)
            self._tell_listeners()

    def _kick(self, peer_key):
        out = self._outgoing.get(peer_key)
        if out is None:
            self._activate(peer_key)
            return
        out.backoff = 0
        out.last_progress = self._clock.seconds()
        self._resend_all(peer_key, out)

    def _activate(self, peer_key):
        """Start sending the peer's whole outbox, oldest first."""
        pending = self._history.pending_for(peer_key)
        if not pending:
            return
        # What we measured before still holds: a message after a quiet spell must
        # not wait the initial (1 s) timeout to recover from one lost datagram.
        rtt = self._rtt.setdefault(peer_key, RTTEstimator())
        rto = rtt.timeout(self._config.min_rto, self._config.max_rto) or self._config.initial_rto
        out = self._outgoing[peer_key] = _Outgoing(rtt, rto)
        out.last_progress = self._clock.seconds()
        for message in pending:
            if message.state == MessageState.FAILED:
                self._set_state(peer_key, message.id, MessageState.SENDING)
            out.queue.append(_Pending(message, _micros(message.timestamp)))
        self._fill_window(peer_key, out)

    def _fill_window(self, peer_key, out):
        while out.queue and (not out.flight or (
                out.in_flight < self._config.window
                and out.queue[0].message.seq - next(iter(out.flight.values())).message.seq
                < self._config.max_ahead)):
            pending = out.queue.popleft()
            out.flight[pending.message.id] = pending
            out.in_flight += pending.count
            self._transmit(peer_key, out, pending, range(pending.count))

    def _transmit(self, peer_key, out, pending, indexes):
        now = self._clock.seconds()
        base = next(iter(out.flight.values())).message.seq
        message = pending.message
        for i in indexes:
            record = wire.encode_fragment(wire.MessageFragment(
                message.id, message.seq, base, pending.timestamp_us, i, pending.count, pending.chunks[i]))
            pending.deadline[i] = now + min(self._config.max_rto, out.rto * 2 ** out.backoff)
            if self.sessions.send(peer_key, record):
                pending.transmissions[i] += 1
                pending.sent_at[i] = now
        self._arm_timer(peer_key, out, min(pending.deadline[i] for i in indexes))
        if not pending.announced_sent and all(pending.transmissions):
            pending.announced_sent = True
            self._set_state(peer_key, message.id, MessageState.SENT)

    def _arm_timer(self, peer_key, out, when):
        if out.timer is not None and out.timer.active() and out.timer.getTime() <= when:
            return
        cancel(out.timer)
        out.timer = self._clock.callLater(max(0.0, when - self._clock.seconds()), self._on_timer, peer_key)

    def _on_timer(self, peer_key):
        self._retransmit(peer_key)
        self._tell_listeners()

    def _retransmit(self, peer_key):
        out = self._outgoing.get(peer_key)
        if out is None:
            return
        out.timer = None
        now = self._clock.seconds()
        if now - out.last_progress >= self._config.give_up_after:
            self._give_up(peer_key, out)
            return
        due = [(pending, [i for i in range(pending.count)
                          if not pending.acked >> i & 1 and pending.deadline[i] <= now])
               for pending in out.flight.values()]
        due = [(pending, indexes) for pending, indexes in due if indexes]
        if due:
            out.backoff = min(out.backoff + 1, 16)
            for pending, indexes in due:
                self._transmit(peer_key, out, pending, indexes)
        waiting = [p.deadline[i] for p in out.flight.values() for i in range(p.count) if not p.acked >> i & 1]
        if waiting:
            self._arm_timer(peer_key, out, min(waiting))

    def _give_up(self, peer_key, out):
        """The peer does not answer: all its messages fail (and stay in the outbox)."""
        self.log.info("{peer} unreachable: {n} messages failed", peer=peer_key[:4].hex(),
                      n=len(out.flight) + len(out.queue))
        del self._outgoing[peer_key]
        cancel(out.timer)
        for pending in list(out.flight.values()) + list(out.queue):
            self._set_state(peer_key, pending.message.id, MessageState.FAILED)

    def _session_ready(self, peer_key):
        """A new session: the peer may have restarted, losing what it held of
        unfinished messages and what was sent under the old keys. Resend it all now,
        and an outbox that had given up (failed) starts again."""
        self._events.append(lambda listener: listener.session_ready(peer_key))
        out = self._outgoing.get(peer_key)
        if out is None:
            self._activate(peer_key)
        else:
            self._resend_all(peer_key, out)

    def _resend_all(self, peer_key, out):
        for pending in list(out.flight.values()):
            pending.acked = 0
            self._transmit(peer_key, out, pending, range(pending.count))

    def _ack_received(self, peer_key, ack):
        out = self._outgoing.get(peer_key)
        pending = out.flight.get(ack.message_id) if out is not None else None
        if pending is None or ack.count != pending.count:
            return  # a late duplicate ack, or nonsense
        now = self._clock.seconds()
        news = ack.received & ~pending.acked
        if news:
            out.backoff = 0
            out.last_progress = now
        for i in range(pending.count):
            if news >> i & 1 and pending.transmissions[i] == 1:
                self._measure_rtt(out, now - pending.sent_at[i])  # Karn: unambiguous samples only
        if not ack.complete:
            pending.acked |= ack.received  # acks may arrive out of order: only ever add
            return
        self._delivered(peer_key, out, ack.message_id)

    def _delivered(self, peer_key, out, message_id):
        pending = out.flight.pop(message_id, None)
        if pending is not None:
            out.in_flight -= pending.count
        else:  # delivered by another way (a dead drop) while still waiting its turn here
            out.queue = deque(p for p in out.queue if p.message.id != message_id)
        self._set_state(peer_key, message_id, MessageState.DELIVERED)
        self._fill_window(peer_key, out)
        if not out.flight and not out.queue:
            cancel(out.timer)
            del self._outgoing[peer_key]

    def _measure_rtt(self, out, sample):
        out.rtt.sample(sample)
        out.rto = out.rtt.timeout(self._config.min_rto, self._config.max_rto)

    # -- receiving -------------------------------------------------------------

    def _payload_received(self, peer_key, payload):
        handler = self.record_handlers.get(payload[0])
        if handler is not None:
            handler(peer_key, payload)
            return
        try:
            record = wire.decode_record(payload)
        except wire.WireError:
            self.log.debug("malformed record from {peer}", peer=peer_key[:4].hex())
            return
        if isinstance(record, wire.Ack):
            self._ack_received(peer_key, record)
        elif isinstance(record, wire.MessageFragment):
            self._fragment_received(peer_key, record)
        elif isinstance(record, wire.PresenceNote):
            self._events.append(lambda listener: listener.presence_received(peer_key, record.status, record.time))
        elif isinstance(record, wire.SecretNote):
            self._events.append(lambda listener: listener.secret_received(peer_key, record.secret))

    def _incoming_of(self, peer_key):
        incoming = self._incoming.get(peer_key)
        if incoming is None:
            incoming = self._incoming[peer_key] = Incoming(*self._history.incoming_state(peer_key))
        return incoming

    def _fragment_received(self, peer_key, fragment):
        incoming = self._incoming_of(peer_key)
        partial = incoming.partial.get(fragment.message_id)
        if partial is None:
            if self._history.has(peer_key, fragment.message_id):  # stored already; our ack was lost
                self._send_ack(peer_key, fragment.message_id, fragment.count, (1 << fragment.count) - 1)
                return
            if len(incoming.partial) >= self._config.max_partial:
                del incoming.partial[next(iter(incoming.partial))]  # the oldest
            partial = incoming.partial[fragment.message_id] = Partial(fragment)
        if not partial.add(fragment):
            return  # contradicts the fragments we hold
        if not partial.complete:
            self._send_ack(peer_key, fragment.message_id, fragment.count, partial.received)
            return
        del incoming.partial[fragment.message_id]
        message = StoredMessage(fragment.message_id, peer_key, False, fragment.seq, partial.text(),
                                fragment.timestamp_us / 1e6, MessageState.HELD)
        ready = self._store_complete(peer_key, incoming, message, fragment.base)
        # Stored durably: only now may the sender learn that it is delivered.
        self._send_ack(peer_key, fragment.message_id, fragment.count, partial.received)
        self._show(peer_key, ready)

    def _store_complete(self, peer_key, incoming, message, base):
        try:
            ready = incoming.accept(message, base)
            self._history.store_incoming(message, [m.id for m in ready], incoming.next_seq)
        except Exception:
            del self._incoming[peer_key]  # reload the order state from history next time
            raise
        return ready

    def _show(self, peer_key, ready):
        for shown in ready:
            shown = dataclasses.replace(shown, state=MessageState.RECEIVED)
            self._events.append(lambda listener, shown=shown: listener.message_received(peer_key, shown))

    # -- what came by dead drop (kadchat.mailbox) ----------------------------------

    def deliver_stored(self, peer_key, message, base):
        """A whole message from a dead drop: stored and shown in order, once per id."""
        incoming = self._incoming_of(peer_key)
        incoming.partial.pop(message.id, None)
        if not self._history.has(peer_key, message.id):
            self._show(peer_key, self._store_complete(peer_key, incoming, message, base))
            self._tell_listeners()

    def set_state(self, peer_key, message_id, state):
        """A state the dead drops learnt (queued, stored, delivered), through NEXT_STATES."""
        out = self._outgoing.get(peer_key)
        if state == MessageState.DELIVERED and out is not None:
            self._delivered(peer_key, out, message_id)
        else:
            self._set_state(peer_key, message_id, state)
        self._tell_listeners()

    def _set_state(self, peer_key, message_id, state):
        if self._history.set_state(peer_key, message_id, state):
            self._notify_state(message_id, state)

    def _send_ack(self, peer_key, message_id, count, received):
        record = wire.encode_ack(wire.Ack(message_id, count, received))
        self.sessions.send(peer_key, record, expects_answer=False)

    def _notify_state(self, message_id, state):
        self._events.append(lambda listener: listener.message_state(message_id, state))

    def _tell_listeners(self):
        """Deliver queued events, last thing in every entry point: a listener may
        call back into us (send, stop) without finding us half-way through a change."""
        while self._events:
            event = self._events.popleft()
            for listener in list(self._listeners):
                event(listener)


def _micros(seconds):
    return int(seconds * 1_000_000)
