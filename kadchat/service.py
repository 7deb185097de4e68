"""ChatService: one running kadchat client, as the UIs see it (kadchat.model.ChatBackend).

A composition root: it builds the parts, wires them together and answers the
UIs' calls by asking them. The DHT node's one UDP socket carries everything
(kadchat.dispatch tells datagrams apart); docs/INTERFACES.md lists the parts.
"""

import os

from twisted.internet import defer, error
from twisted.logger import Logger

from kadchat.addrvote import IdRenewal
from kadchat.contactbook import CONTACTS_FILE, ContactBook
from kadchat.deaddrop import DROP_TTL
from kadchat.dispatch import DatagramDispatch
from kadchat.dropstore import DROPS_FILE, DropStore
from kadchat.errors import UserError
from kadchat.files import parse_bootstrap
from kadchat.history import History, history_path
from kadchat.joining import BOOTSTRAP_FILE, Joiner
from kadchat.mailbox import LOOKUP_RATE, Mailbox
from kadchat.messaging import ChatEndpoint, EndpointListener, MessagingConfig
from kadchat.model import MyStatus, Status
from kadchat.nat.introducer import Introducer
from kadchat.presences import Presences
from kadchat.publisher import PresencePublisher
from kadchat.reachability import Reachability, lan_address
from kadchat.seqcounter import SeqCounter
from kadchat.sessions import SessionConfig
from kadchat.tracker import PresenceTracker
from kadchat.views import contact_view, message_view
from kadchat.whereabouts import WHEREABOUTS_FILE, Whereabouts
from kademlia.node import DHTNode
from kademlia.settings import DHTSettings
from kademlia.timers import Loop

DHT_STATE_FILE = "dht-state.json"
SEQ_FILE = "presence-seq"
REPLAY_FILE = "answered-initiations"
REJOIN_INTERVAL = 10.0  # retry joining this often while no bootstrap node answers
STATUS_INTERVAL = 5.0  # how often the UIs' status line is brought up to date
# Handshakes are also hole-punching probes: start fast (DESIGN.md: ~150 ms), then back off.
HANDSHAKES = dict(handshake_retry=0.15, handshake_attempts=9)


class ChatService(EndpointListener):  # and the endpoint's listener for messages
    log = Logger()

    def __init__(self, reactor, config, identity):
        c = config
        self.config = config
        self.identity = identity
        self.my_name = identity.username
        self.my_card = identity.card
        self.address = None
        self._listeners = []
        self._last_status = None
        self._my_status = MyStatus.ONLINE
        self.book = ContactBook(self._path(CONTACTS_FILE), identity.public_key)
        # Items without `ttl` live record_ttl; dead drops ask (and get) two days.
        settings = DHTSettings(k=c.k, alpha=c.alpha, default_ttl=c.record_ttl, max_ttl=max(c.record_ttl, DROP_TTL))
        self.node = DHTNode(reactor, settings=settings, state_path=self._path(DHT_STATE_FILE), keep_id=False)
        self._db = History(history_path(c.data_dir, identity.public_key))
        self.reachability = Reachability(
            reactor, self.node.send_datagram, identity.signing_key, self.book.keys,
            offer=lambda key, paths: self.endpoint.peer_available(key, paths),
            has_session=lambda key: self.endpoint.has_session(key),
            on_addresses_changed=self._addresses_changed, epoch_seconds=c.epoch_seconds,
            route_of=lambda key: self.endpoint.route_of(key),
            probe=lambda key, addrs: self.endpoint.probe_paths(key, addrs),
            whereabouts=Whereabouts(reactor, self._path(WHEREABOUTS_FILE)),
        )
        self.node.add_response_observer(self.reachability.votes.add)
        self.node.add_response_observer(IdRenewal(self.node, self.reachability.votes))
        # The replay guard on disk: a captured initiation is not answered after a restart either.
        sessions = SessionConfig(replay_path=self._path(REPLAY_FILE), **HANDSHAKES)
        self.endpoint = ChatEndpoint(reactor, self.reachability.traversal.send, identity.signing_key,
                                     self.book.is_contact, self._db, MessagingConfig(sessions=sessions))
        self.endpoint.subscribe(self)
        self.endpoint.subscribe(self.reachability)
        self._dispatch = DatagramDispatch(Introducer(reactor, self.node.send_datagram),
                                          self.reachability.nat_message_received, self.endpoint.datagram_received)
        self._seq = SeqCounter(self._path(SEQ_FILE), reactor.seconds, bytes(identity.signing_key), c.epoch_seconds)
        self.publisher = PresencePublisher(
            reactor, self.node, identity, self._own_presence, self._seq,
            epoch_seconds=c.epoch_seconds, ttl=c.record_ttl, refresh=c.publish_interval,
        )
        self.tracker = PresenceTracker(
            reactor, self.node, epoch_seconds=c.epoch_seconds, ttl=c.record_ttl, skew=c.clock_skew,
            interval=c.refresh_interval if c.refresh else None,  # None: back off while nothing changes
        )
        self.presences = Presences(reactor, self.book, self.tracker, self.reachability, self.endpoint.send_presence,
                                   lambda name, shown: self._tell("presence", name, shown),
                                   drop_session=self.endpoint.drop_session,
                                   keepalive=c.keepalive_interval, gone_after=c.gone_after)
        self.endpoint.subscribe(self.presences)
        self._drops = DropStore(self._path(DROPS_FILE))
        self.mailbox = Mailbox(reactor, self.node, identity.signing_key, self.book.keys, self._drops, self._db,
                               self.endpoint.has_session, self.endpoint.deliver_stored, self.endpoint.set_state,
                               rate=LOOKUP_RATE)
        self._joiner = Joiner(reactor, self.node.bootstrap, self._joined, self._notify_status, REJOIN_INTERVAL)
        self._status_loop = Loop(reactor, STATUS_INTERVAL, self._notify_status_if_changed)

    def _path(self, name):
        return os.path.join(self.config.data_dir, name)

    def start(self):
        """Read the files, bind the socket, start everything; returns one-line warnings, raises UserError."""
        c = self.config
        # A seq file that would end our presence records stops the start, not only a log line later.
        warnings = self._seq.check() + self.book.load()
        self.reachability.whereabouts.load()
        for name, public_key in self.book.items():
            self.tracker.add_contact(name, public_key)
        entries, problems = parse_bootstrap(self._path(BOOTSTRAP_FILE))
        warnings += problems
        given = [(c.bootstrap_host, c.bootstrap_port)] if c.bootstrap_host is not None else []
        self._joiner.addresses = given + list(entries)
        try:
            self.address = self.node.listen(c.port, c.interface)
        except error.CannotListenError as e:
            raise UserError(f"cannot listen on UDP port {c.port}: {e.socketError.strerror}") from None
        self.node.set_datagram_handler(self._dispatch)
        self.reachability.lan = lan_address(self.address, next(iter(self._joiner.addresses), None))
        self.endpoint.start()
        self.presences.liveness.start()
        self._joiner.start()
        self._status_loop.start()
        return warnings

    def _joined(self, size):
        self.log.info("joined the swarm: {size} nodes known", size=size)
        self.reachability.start(self.node.routing_table, self._joiner.addresses)
        self.tracker.start(after=self.publisher.start())  # look once our record is out (see tracker.start)
        self.mailbox.start()
        self._notify_status()

    @defer.inlineCallbacks
    def stop(self):
        """Tell the swarm we left (offline record), then close everything."""
        leaving = self._joiner.joined
        self._joiner.stop()
        yield self._status_loop.stop()
        self.presences.liveness.goodbye()  # contacts with a live session hear it first, at once
        yield self.presences.liveness.stop()
        if leaving:
            yield self.publisher.go_offline()
        for part in (self.tracker, self.mailbox, self.reachability, self.endpoint, self.node):
            yield part.stop()
        self._db.close()
        self._drops.close()
        self._joiner.stopped()

    def _own_presence(self):
        return self.reachability.own_presence(self._my_status.value)

    def _addresses_changed(self):
        if self._joiner.joined:  # contacts need our new address to punch through to us
            self.publisher.publish_now()
            self.presences.liveness.announce()

    def message_received(self, peer_key, stored):
        name = self.book.name_of(peer_key)
        if name is not None:
            self.book.count_unread(name)
            self._tell("message", message_view(stored, self.book))

    def message_state(self, message_id, state):
        self._tell("message_state", message_id.hex(), state)

    def _tell(self, event, *args):
        for listener in list(self._listeners):
            getattr(listener, event)(*args)

    # -- ChatBackend ------------------------------------------------------------------

    def subscribe(self, listener):
        self._listeners.append(listener)

    def _contact(self, name):
        return contact_view(name, self.book, self.presences.board,
                            lambda key: self.reachability.route_kind(self.endpoint.route_of(key)))

    def contacts(self):
        return [self._contact(name) for name in self.book.names()]

    def add_contact(self, card_text, name):
        name, public_key = self.book.add(card_text, name)
        self.tracker.add_contact(name, public_key)
        if self._joiner.joined:
            self.tracker.refresh()
        return self._contact(name)

    def send_message(self, name, text):
        public_key = self.book.key_of(name)
        presence = self.tracker.presence(name)
        paths = self.reachability.paths(public_key, presence) if presence is not None else []
        message_id = self.endpoint.send_message(public_key, paths, text)
        if presence is not None and not self.endpoint.has_session(public_key):
            self.reachability.reach(public_key, presence, offer_direct=False)
        self.mailbox.queued(public_key, message_id)  # not connected: into a dead drop too
        return message_view(self._db.get(message_id), self.book)

    def retry(self, message_id):
        self.endpoint.retry(bytes.fromhex(message_id))

    def history(self, name, limit=200):
        return [message_view(m, self.book) for m in self._db.conversation(self.book.key_of(name), limit)]

    def mark_read(self, name):
        self.book.mark_read(name)

    def refresh(self):
        if not self._joiner.joined:
            return self._joiner.join()
        return defer.gatherResults([self.tracker.refresh(), self.mailbox.check()])

    def set_my_status(self, status):
        try:
            self._my_status = MyStatus(status)
        except ValueError:
            raise UserError(f"a status is {' or '.join(MyStatus)}, not {status!r}") from None
        self.presences.liveness.set_status(self._my_status)
        if self._joiner.joined:
            self.publisher.publish_now()
        self._notify_status()

    def status(self):
        return Status(
            dht_peers=len(self.node.routing_table),
            external_address=self.reachability.external_address(),
            reachability=self.reachability.kind() if self._joiner.joined else "unknown",
            my_status=self._my_status,
        )

    def _notify_status(self):
        self._last_status = status = self.status()
        self._tell("status", status)

    def _notify_status_if_changed(self):
        if self.status() != self._last_status:
            self._notify_status()
