"""ChatService: one running kadchat client, as the UIs see it (kadchat.model.ChatBackend).

A composition root: it builds the parts, wires them together and answers the
UIs' calls by asking them. The DHT node's one UDP socket carries everything
(kadchat.dispatch tells datagrams apart); docs/INTERFACES.md lists the parts.
"""

import os
from hashlib import blake2b

from twisted.internet import defer, error
from twisted.logger import Logger

from kadchat import network_mode
from kadchat.addrvote import IdRenewal
from kadchat.blocklist import BLOCKED_FILE, BlockList
from kadchat.contactbook import CONTACTS_FILE, ContactBook
from kadchat.contactrequests import REQUESTS_FILE, PendingRequests
from kadchat.deaddrop import DROP_TTL
from kadchat.dispatch import DatagramDispatch
from kadchat.dropstore import DROPS_FILE, DropStore
from kadchat.errors import UserError
from kadchat.files import parse_bootstrap
from kadchat.groups import syncwire
from kadchat.groups.engine import Groups
from kadchat.groups.store import GROUPS_FILE, GroupStore
from kadchat.groups.views import author_name, group_message_view, group_view
from kadchat.history import History, history_path
from kadchat.introducer_discovery import Announcer, IntroducerSearch
from kadchat.joining import BOOTSTRAP_FILE, Joiner
from kadchat.mailbox import LOOKUP_RATE, Mailbox
from kadchat.messaging import ChatEndpoint, EndpointListener, MessagingConfig
from kadchat.model import MyStatus, Status
from kadchat.nat.introducer import Introducer
from kadchat.nat.traversal import IntroductionRoute
from kadchat.presences import Presences
from kadchat.presencesecret import SECRETS_FILE, PresenceSecrets
from kadchat.publisher import PresencePublisher
from kadchat.quorum import QuorumDHT
from kadchat.requestwire import REQUEST, RequestInbox, make_request
from kadchat.reachability import Reachability, lan_address
from kadchat.seqcounter import SeqCounter
from kadchat.sessions import SessionConfig
from kadchat.tracker import PresenceTracker
from kadchat.transfer.manager import Transfers
from kadchat.transfer.names import default_downloads
from kadchat.transfer.store import TRANSFERS_FILE, TransferStore
from kadchat.views import contact_view, message_view
from kadchat.whereabouts import WHEREABOUTS_FILE, Whereabouts
from kadchat.wire import FILE_RECORDS
from kademlia import statefile
from kademlia.node import DHTNode
from kademlia.timers import Loop

DHT_STATE_FILE = network_mode.PRIVATE_STATE_FILE  # the private swarm's; Mainline has its own
SEQ_FILE = "presence-seq"
REQUEST_SEQ_FILE = "request-seq"
REQUEST_EVERY = 30.0  # seconds, at least, between two contact requests of ours to one card
CALL_BACK_EVERY = 5.0  # seconds, at least, between two call-backs to one contact (_caller_is_contact)
REPLAY_FILE = "answered-initiations"
REJOIN_INTERVAL = 10.0  # retry joining this often while no bootstrap node answers
STATUS_INTERVAL = 5.0  # how often the UIs' status line is brought up to date
# Handshakes are also hole-punching probes: start fast (DESIGN.md: ~150 ms), then back off.
HANDSHAKES = dict(handshake_retry=0.15, handshake_attempts=9)


class ChatService(EndpointListener):  # and the endpoint's listener for messages
    log = Logger()

    def __init__(self, reactor, config, identity):
        # The network (mainline without bootstrap nodes) decides defaults such as the epoch.
        self._bootstrap_entries, self._bootstrap_problems = parse_bootstrap(
            os.path.join(config.data_dir, BOOTSTRAP_FILE))
        joined_private = bool(statefile.load(os.path.join(config.data_dir, DHT_STATE_FILE)).get("contacts"))
        c = self.config = network_mode.resolve(config, self._bootstrap_entries, joined_private)
        self.mainline = c.network == network_mode.MAINLINE
        self.identity = identity
        self._clock = reactor
        self.my_name = identity.username
        self.my_card = identity.card
        self.my_key = identity.public_key
        self.address = None
        self._listeners = []
        self._last_status = None
        self._my_status = MyStatus.ONLINE
        self.book = ContactBook(self._path(CONTACTS_FILE), identity.public_key)
        self.blocked = BlockList(self._path(BLOCKED_FILE))
        self.pending = PendingRequests(self._path(REQUESTS_FILE), reactor, self.book.has_name)
        self.secrets = PresenceSecrets(self._path(SECRETS_FILE), now=reactor.seconds)
        self._inbox = RequestInbox(reactor, identity.signing_key, self.request_received)
        self._notes = {}  # contact's key -> the note our requests to it carry (this run)
        self._asked = {}  # contact's key -> when we last sent it a request
        self._called_back = {}  # contact's key -> when its handshake last made us reach it
        # Items without `ttl` live record_ttl; dead drops ask (and get) two days.
        settings = network_mode.dht_settings(c, default_ttl=c.record_ttl, max_ttl=max(c.record_ttl, DROP_TTL))
        self.node = DHTNode(reactor, settings=settings, state_path=self._path(network_mode.state_file(c)),
                            keep_id=False)
        self._db = History(history_path(c.data_dir, identity.public_key))
        self.reachability = Reachability(
            reactor, self.node.send_datagram, identity.signing_key, self.book.keys,
            offer=self._offer_paths,
            has_session=lambda key: self.endpoint.has_session(key),
            on_addresses_changed=self._addresses_changed, epoch_seconds=c.epoch_seconds, secrets=self.secrets,
            route_of=lambda key: self.endpoint.route_of(key),
            probe=lambda key, addrs: self.endpoint.probe_paths(key, addrs),
            whereabouts=Whereabouts(reactor, self._path(WHEREABOUTS_FILE)),
        )
        self.node.add_response_observer(self.reachability.votes.add)
        self.node.add_response_observer(IdRenewal(self.node, self.reachability.votes, from_first=self.mainline))
        # Next-epoch records and registrations go out in the epoch's last fifth, at most a minute.
        self.reachability.traversal.lead = lead = min(60.0, c.epoch_seconds / 5)
        # Mainline: BEP 43 read-only until the votes show no NAT in between; puts to 20 until 8 accept.
        self.node.protocol.read_only = self.mainline
        if self.mainline:
            self.node.add_response_observer(self._update_read_only)
        self._quorum = QuorumDHT(reactor, self.node, network_mode.PUT_WIDTH, network_mode.PUT_QUORUM) \
            if self.mainline else None
        dht = self._quorum or self.node  # what the publisher and the mailbox put through
        # The replay guard on disk: a captured initiation is not answered after a restart either.
        sessions = SessionConfig(replay_path=self._path(REPLAY_FILE), **HANDSHAKES)
        self.endpoint = ChatEndpoint(reactor, self.reachability.traversal.send, identity.signing_key,
                                     self.book.is_contact, self._db, MessagingConfig(sessions=sessions))
        self.endpoint.subscribe(self)
        self.endpoint.subscribe(self.reachability)
        self.endpoint.sessions.on_answered = self._answered
        self.groups_engine = Groups(reactor, identity.signing_key, GroupStore(self._path(GROUPS_FILE)),
                                    self.endpoint.send_record, self.endpoint.has_session, self._group_message)
        for record_type in syncwire.RECORD_TYPES:
            self.endpoint.record_handlers[record_type] = self.groups_engine.record_received
        self.introducer = Introducer(reactor, self.node.send_datagram)  # what we do for others' NATs
        self._dispatch = DatagramDispatch(self.introducer,
                                          self.reachability.nat_message_received, self._chat_datagram)
        self._seq = SeqCounter(self._path(SEQ_FILE), reactor.seconds, bytes(identity.signing_key), c.epoch_seconds)
        self._request_seq = SeqCounter(  # the request point's numbers: unrelated to the record's
            self._path(REQUEST_SEQ_FILE), reactor.seconds,
            blake2b(bytes(identity.signing_key), person=b"kadchat-reqseq").digest(), c.epoch_seconds)
        self.publisher = PresencePublisher(
            reactor, dht, identity, self._own_presence, self._seq,
            epoch_seconds=c.epoch_seconds, ttl=c.record_ttl, refresh=c.publish_interval, lead=lead,
            secrets=self.secrets, request_seq=self._request_seq, renew_id=lambda: self.node.renew_id(self._voted_ip()),
        )
        self.tracker = PresenceTracker(
            reactor, self.node, epoch_seconds=c.epoch_seconds, ttl=c.record_ttl, skew=c.clock_skew,
            interval=c.refresh_interval if c.refresh else None,  # None: back off while nothing changes
            secret_of=self.secrets.of,
        )
        self.presences = Presences(reactor, self.book, self.tracker, self.reachability, self.endpoint.send_presence,
                                   lambda name, shown: self._tell("presence", name, shown),
                                   drop_session=self.endpoint.drop_session,
                                   keepalive=c.keepalive_interval, gone_after=c.gone_after)
        self.endpoint.subscribe(self.presences)
        self._drops = DropStore(self._path(DROPS_FILE))
        self.mailbox = Mailbox(reactor, dht, identity.signing_key, self.book.keys, self._drops, self._db,
                               self.endpoint.has_session, self.endpoint.deliver_stored, self.endpoint.set_state,
                               rate=LOOKUP_RATE, secrets=self.secrets, secret_received=self._secret_dropped)
        self._joiner = Joiner(reactor, self.node.bootstrap, self._joined, self._notify_status, REJOIN_INTERVAL,
                              resolve=lambda host: reactor.resolve(host, timeout=(2,)),
                              bootstrap_file=self._path(BOOTSTRAP_FILE))
        self.node.add_response_observer(self._joiner.heard_from)
        self._status_loop = Loop(reactor, STATUS_INTERVAL, self._notify_status_if_changed)
        # Mainline: introducers are announced kadchat nodes, found with get_peers.
        self._introducer_search = IntroducerSearch(reactor, self.node, self.reachability.traversal,
                                                   self.reachability.external_address) if self.mainline else None
        self._announcer = Announcer(reactor, self.node, self.publicly_reachable) \
            if self.mainline and c.introducer else None
        self.transfers_db = TransferStore(self._path(TRANSFERS_FILE))
        self.files = Transfers(
            reactor, self.endpoint.sessions.send, self.transfers_db,
            downloads=lambda: c.downloads or default_downloads(), name_of=self.book.name_of,
            route_kind=self.reachability.route_kind_of,
            on_change=lambda transfer: self._tell("transfer", transfer), relay_ok=c.relay_files)
        for record_type in FILE_RECORDS:
            self.endpoint.record_handlers[record_type] = self.files.record_received

    def _path(self, name):
        return os.path.join(self.config.data_dir, name)

    def start(self):
        """Read the files, bind the socket, start everything; returns one-line warnings, raises UserError."""
        c = self.config
        # A seq file that would end our presence records stops the start, not only a log line later.
        warnings = (self._seq.check() + self._request_seq.check() + self.book.load() + self.blocked.load()
                    + self.pending.load() + self.secrets.load())
        self.reachability.whereabouts.load()
        for name, public_key in self.book.items():
            self.tracker.add_contact(name, public_key)
            self._seen_in_history(name, public_key)
        warnings += self._bootstrap_problems
        given = [(c.bootstrap_host, c.bootstrap_port)] if c.bootstrap_host is not None else []
        self._joiner.addresses = network_mode.join_addresses(c, self._bootstrap_entries)
        self._joiner.unsaved = [address for address in given if address not in self._bootstrap_entries]
        try:
            self.address = self.node.listen(c.port, c.interface)
        except error.CannotListenError as e:
            raise UserError(f"cannot listen on UDP port {c.port}: {e.socketError.strerror}") from None
        self.node.set_datagram_handler(self._dispatch, exempt=self.endpoint.sessions.is_live_traffic)
        toward = network_mode.ROUTE_PROBE if self.mainline else next(iter(self._joiner.addresses), None)
        self.reachability.lan = lan_address(self.address, toward)
        if self.mainline:
            self.log.info("riding the public BitTorrent DHT (Mainline) through {n} nodes",
                          n=len(self._joiner.addresses))
        self.endpoint.start()
        self.groups_engine.start()
        self.presences.liveness.start()
        self._joiner.start()
        self._status_loop.start()
        self.files.start()
        return warnings

    def _joined(self, size):
        self.log.info("joined the swarm: {size} nodes known", size=size)
        if self.mainline:  # our first record lists the introducers the first search found
            published = self._introducer_search.start().addBoth(lambda _: self.publisher.start())
            if self._announcer is not None:
                self._announcer.start()
        else:
            self.reachability.start(self.node.routing_table, self._joiner.addresses)
            published = self.publisher.start()
        self.tracker.start(after=published)  # look once our record is out (see tracker.start)
        self.mailbox.start()
        self._notify_status()

    @defer.inlineCallbacks
    def stop(self):
        """Tell the swarm we left (offline record), then close everything."""
        leaving = self._joiner.joined
        self._joiner.stop()
        yield self._status_loop.stop()
        yield self.files.stop()
        self.presences.liveness.goodbye()  # contacts with a live session hear it first, at once
        self.endpoint.leave()  # and what they write next goes into dead drops, not to us
        yield self.presences.liveness.stop()
        if leaving:
            yield self.publisher.go_offline()
        for part in (self._introducer_search, self._announcer, self._quorum):
            if part is not None:
                part.stop()
        for part in (self.tracker, self.mailbox, self.reachability, self.groups_engine, self.endpoint, self.node):
            yield part.stop()
        self._db.close()
        self.groups_engine.close()
        self._drops.close()
        self.transfers_db.close()
        self._joiner.stopped()

    def _voted_ip(self):
        address = self.reachability.votes.external_address()
        return address[0] if address is not None else None

    def _offer_paths(self, public_key, paths):
        if not self.book.is_contact(public_key):  # a race may end after the contact was removed
            return
        self.endpoint.peer_available(public_key, paths)
        to_request_tag = [p for p in paths if isinstance(p, IntroductionRoute) and not p.secret]
        if to_request_tag:  # they may not have us as a contact yet: ask, with our name and note
            self._ask(public_key, to_request_tag)

    def _ask(self, public_key, routes):
        now = self._clock.seconds()
        if now - self._asked.get(public_key, -REQUEST_EVERY) < REQUEST_EVERY:
            return
        self._asked[public_key] = now
        note = self._notes.get(public_key, "")
        request = make_request(self.identity.signing_key, public_key, self.my_name, note, now)
        for route in routes:
            self.reachability.traversal.send(request, route)

    def _answered(self, public_key, address):
        """We answered a contact's handshake and have no session with it yet. If it came
        through an introducer, call back through the same one: a caller that found only our
        request point has no address of ours, so its NAT drops our answer; our own
        introduced handshake gives it our address, and its answer opens the way."""
        introducer = self.reachability.traversal.introducer_of(address)
        now = self._clock.seconds()
        if introducer is None or now - self._called_back.get(public_key, -CALL_BACK_EVERY) < CALL_BACK_EVERY:
            return
        self._called_back[public_key] = now
        self._clock.callLater(0, self._call_back, public_key, introducer)  # not inside the handshake

    def _call_back(self, public_key, introducer):
        if not self.book.is_contact(public_key) or self.endpoint.has_session(public_key):
            return
        secrets = dict.fromkeys([self.secrets.of(public_key), b""])  # its tag, and its request tag
        routes = [route for secret in secrets
                  for route in self.reachability.traversal.routes_to(public_key, [introducer], False, secret)]
        self.endpoint.call_back(public_key, routes)

    def _chat_datagram(self, data, address):
        if data[:1] == bytes([REQUEST]):
            self._inbox.received(data, address)
        else:
            self.endpoint.datagram_received(data, address)

    def session_ready(self, peer_key):
        self.files.session_ready(peer_key)
        if self.book.is_contact(peer_key):  # it is how contacts find our records
            self._hand_secret(peer_key)
        self.groups_engine.session_ready(peer_key)

    def _hand_secret(self, peer_key):
        """Our secret over the session; the contact then holds it (no SECRET drop needed)."""
        if self.endpoint.send_secret(peer_key, self.secrets.own):
            self._keep(self.secrets.handed, peer_key)

    def secret_received(self, peer_key, secret):
        if self.book.is_contact(peer_key):
            self._keep(self.secrets.received, peer_key, secret)

    def _secret_dropped(self, peer_key, drop):
        """A contact's SECRET drop (kadchat.mailbox): kept unless older than what we hold, and
        then looked up at once with it, so the pair meets without waiting for the next poll."""
        if self.book.is_contact(peer_key) and self._keep(self.secrets.received, peer_key, drop.secret, drop.made_us):
            self.tracker.look_up(peer_key)

    def _keep(self, change, *args):
        try:
            return change(*args)
        except OSError as e:
            self.log.error("cannot keep presence secrets: {error}", error=e)
            return False

    def publicly_reachable(self):
        """Whether DHT nodes see us at our own socket's address: no NAT in between."""
        local = (self.reachability.lan[0], self.address[1]) if self.reachability.lan and self.address else None
        return network_mode.publicly_reachable(self.reachability.votes.external_address(), local)

    def _update_read_only(self, *_response):
        self.node.protocol.read_only = not self.publicly_reachable()

    def _own_presence(self):
        return self.reachability.own_presence(self._my_status.value)

    def _addresses_changed(self):
        if self._joiner.joined:  # contacts need our new address to punch through to us
            self.publisher.publish_now()
            self.presences.liveness.announce()

    def _seen_in_history(self, name, public_key, recent=50):
        """"Last seen" starts no older than the last message received (of the recent ones)."""
        received = [m.timestamp for m in self._db.conversation(public_key, recent) if not m.outgoing]
        if received:
            self.book.seen(name, min(max(received), self._clock.seconds()))

    def message_received(self, peer_key, stored):
        name = self.book.name_of(peer_key)
        if name is not None:
            self.book.count_unread(name)
            self.book.seen(name, min(stored.timestamp, self._clock.seconds()))  # a message is a sign of life
            self._tell("message", message_view(stored, self.book))

    def request_received(self, public_key, name, note, source):
        """Someone not in our contacts asks to become one (their card is `public_key`), from `source`."""
        if self.book.is_contact(public_key) or self.blocked.is_blocked(public_key) or public_key == self.my_key:
            return
        try:
            request = self.pending.offer(public_key, name, note, source[0])
        except OSError as e:  # no disk: the ask is lost, as if rate-limited
            self.log.error("cannot keep a contact request: {error}", error=e)
            return
        if request is not None:
            self._tell("contact_request", request)

    def message_state(self, message_id, state):
        self._tell("message_state", message_id.hex(), state)

    def _tell(self, event, *args):
        for listener in list(self._listeners):
            told = getattr(listener, event, None)  # a UI written before an event existed skips it
            if told is not None:
                told(*args)

    # -- ChatBackend ------------------------------------------------------------------

    def subscribe(self, listener):
        self._listeners.append(listener)

    def _contact(self, name):
        return contact_view(name, self.book, self.presences.board,
                            self.reachability.route_kind_of)

    def contacts(self):
        return [self._contact(name) for name in self.book.names()]

    def add_contact(self, card_text, name, note=""):
        """`note`: what our contact request says, should they not have our card as a contact yet."""
        name, public_key = self.book.add(card_text, name)
        self._notes[public_key] = note
        self.pending.drop(public_key)  # adding a requester's card answers its request
        if self.blocked.is_blocked(public_key):  # adding a blocked card is the user's unblock
            self._write(self.blocked.unblock, public_key)
        self.tracker.add_contact(name, public_key)
        if self._joiner.joined:
            self.tracker.refresh()
        self.mailbox.hand_secret([public_key])  # they may not have us yet: no introducer needed
        self._tell("contacts_changed")
        return self._contact(name)

    def requests(self):
        return self.pending.all()

    def accept_request(self, name):
        request = self.pending.named(name)
        return self.add_contact(request.card, request.name)  # which answers the request

    def ignore_request(self, name):
        self.pending.take(name)

    def block(self, name):
        if self.book.has(name):
            public_key = self._forget_contact(name)
        elif name in (r.name for r in self.pending.all()):
            public_key, _ = self.pending.take(name)
        else:
            raise UserError(f"no contact or contact request named {name!r}")
        self._write(self.blocked.block, public_key, name)
        self._tell("contacts_changed")

    def rename_contact(self, name, new_name):
        new_name = self.book.rename(name, new_name)
        self.tracker.rename_contact(name, new_name)
        self.presences.board.rename(name, new_name)
        self._tell("contacts_changed")
        return self._contact(new_name)

    def remove_contact(self, name):
        self._forget_contact(name)
        self._tell("contacts_changed")

    def _forget_contact(self, name):
        """Remove the contact and everything that follows or reaches it; returns its key."""
        public_key = self.book.remove(name)
        self.tracker.remove_contact(name)
        self.presences.board.forget(name)
        self.presences.liveness.forget(public_key)
        self.endpoint.forget_peer(public_key)
        self.reachability.forget(public_key)
        for remembered in (self._notes, self._asked, self._called_back):
            remembered.pop(public_key, None)
        self._rotate_secret(public_key)
        return public_key

    def _rotate_secret(self, removed):
        """What the removed contact holds must stop working: a new secret, out to the others now."""
        old = self._write(self.secrets.rotate, removed)
        if self._joiner.joined:
            self.publisher.rotated(old)
        for public_key in self.book.keys():  # the others: in a drop, or on their next handshake
            if self.endpoint.has_session(public_key):
                self._hand_secret(public_key)
        self.mailbox.hand_secret(self.book.keys())

    @staticmethod
    def _write(change, *args):
        try:
            return change(*args)
        except OSError as e:
            raise UserError(f"cannot write {e.filename or 'a file'}: {e.strerror}") from None

    def send_message(self, name, text):
        public_key = self.book.key_of(name)
        presence = self.tracker.presence(name)
        paths = self.reachability.paths(public_key, presence) if presence is not None else []
        message_id = self.endpoint.send_message(public_key, paths, text)
        if presence is not None and not self.endpoint.has_session(public_key):
            self.reachability.reach(public_key, presence, offer_direct=False)
        self.mailbox.queued(public_key, message_id)  # not connected: into a dead drop too
        return message_view(self._db.get(message_id), self.book)

    def send_file(self, name, path):
        public_key = self.book.key_of(name)
        self._reach(public_key, name)
        return self.files.offer(public_key, path)

    def accept_file(self, transfer_id):
        return self.files.accept(transfer_id)

    def cancel_file(self, transfer_id):
        self.files.cancel(transfer_id)

    def transfers(self):
        return self.files.views()

    def _reach(self, public_key, name):
        """Open a session to the contact if its presence says where (as a message would)."""
        presence = self.tracker.presence(name)
        if presence is not None and not self.endpoint.has_session(public_key):
            self.endpoint.peer_available(public_key, self.reachability.paths(public_key, presence))
            self.reachability.reach(public_key, presence, offer_direct=False)

    def retry(self, message_id):
        self.endpoint.retry(bytes.fromhex(message_id))

    def undelivered(self):
        """The outbox (every outgoing message not delivered yet) of the contacts, oldest first."""
        waiting = [m for peer in self._db.peers_with_pending() if self.book.name_of(peer) is not None
                   for m in self._db.pending_for(peer)]
        return [message_view(m, self.book) for m in sorted(waiting, key=lambda m: m.timestamp)]

    def history(self, name, limit=200, before=None):
        older_than = _message_id(before) if before is not None else None
        return [message_view(m, self.book)
                for m in self._db.conversation(self.book.key_of(name), limit, older_than)]

    def search(self, text, limit=50):
        """Over the conversations with current contacts (a removed one's history stays unsearched)."""
        return [message_view(m, self.book) for m in self._db.search(text, self.book.keys(), limit)]

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
            unreachable=self._joiner.unreachable,
        )

    def _notify_status(self):
        self._last_status = status = self.status()
        self._tell("status", status)

    def _notify_status_if_changed(self):
        if self.status() != self._last_status:
            self._notify_status()

    # -- groups (kadchat.groups) --------------------------------------------------------

    def _group_view(self, group):
        return group_view(group, self.identity.public_key, self.my_name, self.book)

    def _group_message(self, group, message):
        self._tell("group_message", group_message_view(group, message, self.identity.public_key, self.my_name, self.book))

    def groups(self):
        return [self._group_view(group) for group in self.groups_engine.groups()]

    def create_group(self, name):
        return self._group_view(self._write(self.groups_engine.create, name))

    def add_member(self, group, contact):
        group = self.groups_engine.named(group)
        self._write(self.groups_engine.add, group, self.book.key_of(contact), contact)
        return self._group_view(group)

    def remove_member(self, group, contact):
        group = self.groups_engine.named(group)
        key = next((k for k in group.log.members if self._member_name(group, k) == contact), None)
        if key is None:
            raise UserError(f"{contact!r} is not a member of {group.name}")
        self._write(self.groups_engine.remove, group, key)
        return self._group_view(group)

    def _member_name(self, group, key):
        return author_name(key, group.log, self.identity.public_key, self.my_name, self.book)

    def leave_group(self, group):
        self._write(self.groups_engine.leave, self.groups_engine.named(group))

    def send_group_message(self, group, text):
        group = self.groups_engine.named(group)
        message = self._write(self.groups_engine.send, group, text)
        return group_message_view(group, message, self.identity.public_key, self.my_name, self.book)

    def group_history(self, group, limit=200, before=None):
        group = self.groups_engine.named(group)
        older_than = _message_id(before) if before is not None else None
        return [group_message_view(group, m, self.identity.public_key, self.my_name, self.book)
                for m in self.groups_engine.history(group, limit, older_than)]


def _message_id(text):
    """A UI's message id (hex) back as the history's bytes; a bad one is a UserError."""
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise UserError(f"not a message id: {text!r}") from None
