"""ChatService: one running kadchat client, as the UIs see it (kadchat.model.ChatBackend).

It owns the node's one UDP socket and everything on it: the DHT node, the
introducer every node offers its peers, our own NAT traversal, the chat
endpoint; and around them presence publishing and tracking, the history, and
the contacts file. Datagrams are told apart by their first byte: `d` is KRPC
(the DHT node keeps those), 0x10..0x1f NAT traversal, 0x01..0x0f chat.
"""

import os
import socket

from twisted.internet import defer, error, task
from twisted.python import failure
from twisted.logger import Logger

from kadchat import wire
from kadchat.nat import natwire
from kadchat.addrvote import CONSISTENT, RANDOM, AddressVotes
from kadchat.cards import decode_card, encode_card
from kadchat.errors import UserError
from kadchat.files import append_contact, parse_bootstrap, parse_contacts, validate_name
from kadchat.history import History, history_path
from kadchat.nat.introducer import Introducer
from kadchat.messaging import ChatEndpoint, MessagingConfig
from kadchat.model import Contact, Message, Status
from kadchat.nat.traversal import RelayRoute, Traversal
from kadchat.presence import AWAY, MAX_ADDRS, OFFLINE, ONLINE, Presence
from kadchat.publisher import PresencePublisher
from kadchat.seqcounter import SeqCounter
from kadchat.sessions import SessionConfig
from kadchat.tracker import PresenceTracker
from kademlia.node import DHTNode
from kademlia.settings import DHTSettings

CONTACTS_FILE = "contacts.txt"
BOOTSTRAP_FILE = "bootstrap.txt"
DHT_STATE_FILE = "dht-state.json"
SEQ_FILE = "presence-seq"
REJOIN_INTERVAL = 10.0  # retry joining this often while no bootstrap node answers
PUNCH_GRACE = 3.0  # try direct paths and hole punching this long before relaying
INTRODUCERS_KEPT = 3  # registrations we keep alive (a record lists up to presence.MAX_INTRODUCERS)
ON_DEMAND_REFRESH = 60.0  # without -r, still notice contacts within a minute
STATUS_INTERVAL = 5.0  # how often the UIs' status line is brought up to date
# Handshakes are also hole-punching probes: start fast (DESIGN.md: ~150 ms), then back off.
MESSAGING = MessagingConfig(sessions=SessionConfig(handshake_retry=0.15, handshake_attempts=9))


class ChatService:
    log = Logger()

    def __init__(self, reactor, config, identity):
        self._reactor = reactor
        self.config = config
        self.identity = identity
        self.my_name = identity.username
        self.my_card = identity.card
        self._listeners = []
        self._contacts = {}  # name -> public key
        self._names = {}  # public key -> name
        self._unread = {}
        self._last_seen = {}
        self.bootstrap_addresses = []
        self.joined = False
        self._stopping = False
        self._rejoin = None
        self._join_waiters = []
        self._status_loop = None
        self._last_status = None
        self._relay_timers = {}

    def _path(self, name):
        return os.path.join(self.config.data_dir, name)

    # -- life cycle ------------------------------------------------------------

    def start(self):
        """Bind the socket and start everything; raises UserError if it can't start.

        Returns a list of one-line warnings (bad lines in contacts/bootstrap files)."""
        c, reactor = self.config, self._reactor
        warnings = self._load_contacts()
        entries, problems = parse_bootstrap(self._path(BOOTSTRAP_FILE))
        warnings += problems
        self.bootstrap_addresses = list(entries)
        if c.bootstrap_host is not None:
            self.bootstrap_addresses.insert(0, (c.bootstrap_host, c.bootstrap_port))
        settings = DHTSettings(k=c.k, alpha=c.alpha, default_ttl=c.record_ttl, max_ttl=c.record_ttl)
        self.node = DHTNode(reactor, settings=settings, state_path=self._path(DHT_STATE_FILE))
        try:
            self.address = self.node.listen(c.port, c.interface)
        except error.CannotListenError as e:
            raise UserError(f"cannot listen on UDP port {c.port}: {e.socketError.strerror}") from None
        self._lan = self._lan_address()
        self.votes = AddressVotes(reactor.seconds)
        self.node.add_response_observer(self.votes.add)
        self._db = History(history_path(c.data_dir, self.identity.public_key))
        self.introducer = Introducer(reactor, self.node.send_datagram)
        self.traversal = Traversal(reactor, self.node.send_datagram, self.identity.public_key, c.epoch_seconds,
                                   contacts=self._names.keys)
        self.endpoint = ChatEndpoint(
            reactor, self.traversal.send, self.identity.signing_key, self._names.__contains__, self._db,
            MESSAGING,
        )
        self.endpoint.subscribe(self)
        self.node.set_datagram_handler(self._datagram_received)
        self.publisher = PresencePublisher(
            reactor, self.node, self.identity, self._own_presence,
            SeqCounter(self._path(SEQ_FILE), reactor.seconds),
            epoch_seconds=c.epoch_seconds, ttl=c.record_ttl, refresh=c.publish_interval,
        )
        self.tracker = PresenceTracker(
            reactor, self.node, list(self._contacts.items()), epoch_seconds=c.epoch_seconds,
            ttl=c.record_ttl, skew=c.clock_skew,
            interval=c.refresh_interval if c.refresh else ON_DEMAND_REFRESH,
        )
        self.tracker.subscribe(self._presence_event)
        self.endpoint.start()
        self._rejoin = task.LoopingCall(self._join)
        self._rejoin.clock = reactor
        self._rejoin.start(REJOIN_INTERVAL, now=True)
        self._status_loop = task.LoopingCall(self._notify_status_if_changed)
        self._status_loop.clock = reactor
        self._status_loop.start(STATUS_INTERVAL, now=False)
        return warnings

    def _load_contacts(self):
        entries, problems = parse_contacts(self._path(CONTACTS_FILE))
        for entry in entries:
            if entry.public_key == self.identity.public_key:
                problems.append(f"{CONTACTS_FILE}:{entry.line}: that is your own card; skipped")
                continue
            self._contacts[entry.name] = entry.public_key
            self._names[entry.public_key] = entry.name
        return problems

    def _join(self):
        """Join the swarm; until a node answers, try again every REJOIN_INTERVAL.
        A join already under way (the retry loop, or Refresh) is shared."""
        if self.joined:
            return defer.succeed(None)
        waiter = defer.Deferred()
        self._join_waiters.append(waiter)
        if len(self._join_waiters) == 1:
            self._try_to_join().addBoth(self._join_attempt_ended)
        return waiter

    def _join_attempt_ended(self, result):
        waiters, self._join_waiters = self._join_waiters, []
        if isinstance(result, failure.Failure):
            self.log.failure("joining the swarm failed", result)
        for waiter in waiters:
            waiter.callback(None)

    @defer.inlineCallbacks
    def _try_to_join(self):
        size = yield self.node.bootstrap(self.bootstrap_addresses)
        if self._stopping:
            return
        if size == 0:
            if self.bootstrap_addresses:
                self.log.warn("no bootstrap node answered; retrying in {s:.0f} s", s=REJOIN_INTERVAL)
            else:
                self.log.warn(
                    "no bootstrap node known: give -I HOST -P PORT or list HOST PORT lines in {file};"
                    " retrying in {s:.0f} s", file=BOOTSTRAP_FILE, s=REJOIN_INTERVAL)
            self._notify_status()
            return
        self.joined = True
        if self._rejoin.running:
            self._rejoin.stop()
        self.log.info("joined the swarm: {size} nodes known", size=size)
        answering = {c.address for c in self.node.routing_table.contacts()}
        introducers = [a for a in self.bootstrap_addresses if a in answering] or [
            c.address for c in self.node.routing_table.closest(self.node.node_id)
        ]
        self.traversal.start(introducers[:INTRODUCERS_KEPT])
        self.publisher.start()
        self.tracker.start()
        self._notify_status()

    @defer.inlineCallbacks
    def stop(self):
        """Tell the swarm we left (offline record), then close everything."""
        self._stopping = True
        for loop in (self._rejoin, self._status_loop):
            if loop is not None and loop.running:
                loop.stop()
        for timer in self._relay_timers.values():
            if timer.active():
                timer.cancel()
        if self.joined:
            yield self.publisher.go_offline()
        yield self.tracker.stop()
        self.traversal.stop()
        yield self.endpoint.stop()
        yield self.node.stop()
        self._db.close()

    # -- the socket --------------------------------------------------------------

    def _datagram_received(self, data, address):
        if data[:1] and data[0] in natwire.NAT_TYPES:
            surfaced = self._nat_datagram_received(data, address)
            if surfaced is None:
                return
            data, address = surfaced
        if wire.is_session_datagram(data):
            self.endpoint.datagram_received(data, address)

    def _nat_datagram_received(self, data, address):
        """Serve it as an introducer and take it as a client; returns the chat datagram
        it carried (introduced or relayed) with the address to answer, or None."""
        try:
            message = natwire.decode(data)
        except natwire.NatWireError:
            return None
        self.introducer.handle(message, address)
        if not isinstance(message, natwire.Registered):
            return self.traversal.handle(message, address)
        before = self._own_addresses()
        self.traversal.handle(message, address)
        if self._own_addresses() != before and self.joined and not self._stopping:
            # An introducer saw us at a new address: contacts need it to punch through to us.
            self.publisher.publish_now()
        return None

    # -- presence ------------------------------------------------------------------

    def _own_addresses(self):
        """Where contacts may reach us: our address as most DHT nodes see it, as our
        introducers see it (all a small swarm may know: too few voters), on our LAN."""
        found = [self.votes.external_address(), *self.traversal.observed.values(), self._lan]
        return [a for a in dict.fromkeys(found) if a is not None][:MAX_ADDRS]

    def _own_presence(self):
        return Presence(
            status=ONLINE, addrs=self._own_addresses(), nat=self.votes.nat_class(),
            introducers=self.traversal.introducers, ts=self._reactor.seconds(),
        )

    def _lan_address(self):
        """Our address on the way to the first bootstrap node (no packet is sent)."""
        host, port = self.address
        if host != "0.0.0.0":
            return host, port
        if not self.bootstrap_addresses:
            return None
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            probe.connect(self.bootstrap_addresses[0])
            return probe.getsockname()[0], port
        except OSError:
            return None
        finally:
            probe.close()

    def _presence_event(self, name, event, presence):
        public_key = self._contacts.get(name)
        if public_key is None:
            return
        if presence is not None:
            self._last_seen[name] = presence.ts
        if event in (ONLINE, AWAY, "address") and presence is not None:
            self._reach(public_key, presence)
        if event != "address":
            for listener in list(self._listeners):
                listener.presence(name, event)

    def _paths(self, public_key, presence, relay=None):
        """Where to send a handshake to the contact: its addresses, and through its
        introducers; the relay too if asked, or from the start if both NATs are random."""
        if relay is None:
            relay = presence.nat == RANDOM and self.votes.nat_class() == RANDOM
        return list(presence.addrs) + self.traversal.routes_to(public_key, presence.introducers, relay=relay)

    def _reach(self, public_key, presence):
        """Offer every path to the contact; add the relay if no session comes up soon."""
        self.endpoint.peer_available(public_key, self._paths(public_key, presence))
        self._relay_later(public_key, presence)

    def _relay_later(self, public_key, presence):
        """Unless a session comes up within PUNCH_GRACE, add the relay to the paths."""
        old = self._relay_timers.pop(public_key, None)
        if old is not None and old.active():
            old.cancel()

        def relay_if_needed():
            self._relay_timers.pop(public_key, None)
            if not self.endpoint.sessions.has_session(public_key):
                self.endpoint.peer_available(public_key, self._paths(public_key, presence, relay=True))

        self._relay_timers[public_key] = self._reactor.callLater(PUNCH_GRACE, relay_if_needed)

    # -- ChatEndpoint listener -------------------------------------------------------

    def message_received(self, peer_key, stored):
        name = self._names.get(peer_key)
        if name is None:
            return
        self._unread[name] = self._unread.get(name, 0) + 1
        message = self._message(stored)
        for listener in list(self._listeners):
            listener.message(message)

    def message_state(self, message_id, state):
        for listener in list(self._listeners):
            listener.message_state(message_id.hex(), state)

    def _message(self, stored):
        return Message(
            id=stored.id.hex(),
            contact=self._names.get(stored.peer, "?"),
            outgoing=stored.outgoing,
            text=stored.text,
            timestamp=stored.timestamp,
            state=stored.state,
        )

    # -- ChatBackend ------------------------------------------------------------------

    def subscribe(self, listener):
        self._listeners.append(listener)

    def _contact(self, name):
        public_key = self._contacts[name]
        presence = self.tracker.status(name)
        if presence not in (ONLINE, AWAY):
            presence = OFFLINE
        route = None  # a session with a contact who said goodbye is no route
        if presence != OFFLINE and self.endpoint.sessions.has_session(public_key):
            route = "relayed" if isinstance(self.endpoint.sessions.address_of(public_key), RelayRoute) else "direct"
        return Contact(
            name=name,
            card=encode_card(public_key),
            presence=presence,
            last_seen=self._last_seen.get(name),
            unread=self._unread.get(name, 0),
            route=route,
        )

    def contacts(self):
        return [self._contact(name) for name in sorted(self._contacts, key=str.lower)]

    def add_contact(self, card_text, name):
        public_key = decode_card(card_text)
        name = validate_name(name)
        if public_key == self.identity.public_key:
            raise UserError("that is your own card")
        if public_key in self._names:
            raise UserError(f"that card is already your contact {self._names[public_key]!r}")
        if name.lower() in (n.lower() for n in self._contacts):
            raise UserError(f"you already have a contact named {name!r}")
        append_contact(self._path(CONTACTS_FILE), encode_card(public_key), name)
        self._contacts[name] = public_key
        self._names[public_key] = name
        self.tracker.add_contact(name, public_key)
        if self.joined:
            self.tracker.refresh()
        return self._contact(name)

    def _key_of(self, name):
        try:
            return self._contacts[name]
        except KeyError:
            raise UserError(f"no contact named {name!r}") from None

    def send_message(self, name, text):
        public_key = self._key_of(name)
        presence = self.tracker.presence(name)
        paths = self._paths(public_key, presence) if presence is not None else []
        message_id = self.endpoint.send_message(public_key, paths, text)
        if presence is not None and not self.endpoint.sessions.has_session(public_key):
            self._relay_later(public_key, presence)
        return self._message(self._db.get(message_id))

    def retry(self, message_id):
        self.endpoint.retry(bytes.fromhex(message_id))

    def history(self, name, limit=200):
        return [self._message(m) for m in self._db.conversation(self._key_of(name), limit)]

    def mark_read(self, name):
        self._unread[name] = 0

    def refresh(self):
        if not self.joined:
            return self._join()
        return self.tracker.refresh()

    def status(self):
        if not self.joined:
            reachability = "unknown"
        elif self.votes.nat_class() == RANDOM:
            reachability = "relayed"
        elif self.votes.nat_class() == CONSISTENT or self.votes.external_address() is not None:
            reachability = "direct"
        else:
            reachability = "unknown"
        seen_by_introducers = next(iter(self.traversal.observed.values()), None)
        return Status(
            dht_peers=len(self.node.routing_table),
            external_address=self.votes.external_address() or seen_by_introducers,
            reachability=reachability,
        )

    def _notify_status(self):
        self._last_status = status = self.status()
        for listener in list(self._listeners):
            listener.status(status)

    def _notify_status_if_changed(self):
        if self.status() != self._last_status:
            self._notify_status()

