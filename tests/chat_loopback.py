"""ChatEndpoints on real UDP sockets on 127.0.0.1, and a probe of message latency.

For the loopback tests and benchmarks: `listen(reactor, identity, contact_key)`
gives an endpoint on its own socket (port 0 unless given), `Contacts.open(reactor)` two
that know each other, and `latencies(...)` sends a message every `interval`
seconds for `duration` and gives, per message, send -> delivered in seconds.
"""

from dataclasses import dataclass

from nacl.signing import SigningKey
from twisted.internet import defer, protocol

from kadchat.history import History
from kadchat.messaging import ChatEndpoint, EndpointListener, MessagingConfig
from kadchat.model import MessageState
from kademlia.timers import cancel


class _UDP(protocol.DatagramProtocol):
    endpoint = None

    def datagramReceived(self, data, addr):
        self.endpoint.datagram_received(data, addr)


@dataclass
class Listening:
    endpoint: ChatEndpoint
    port: object  # the IListeningPort
    history: History

    @property
    def addr(self):
        return ("127.0.0.1", self.port.getHost().port)

    @defer.inlineCallbacks
    def close(self):
        yield self.endpoint.stop()
        yield self.port.stopListening()
        self.history.close()


def listen(reactor, identity, contact_key, history_path=":memory:", config=MessagingConfig(), port=0):
    udp = _UDP()
    history = History(history_path)
    udp.endpoint = ChatEndpoint(reactor, lambda data, addr: udp.transport.write(data, addr),
                                identity, {contact_key}.__contains__, history, config)
    listening = reactor.listenUDP(port, udp, interface="127.0.0.1")
    udp.endpoint.start()
    return Listening(udp.endpoint, listening, history)


@dataclass
class Contacts:
    """Alice and Bob, each on a socket of their own, each the other's contact."""

    alice: Listening
    bob: Listening
    alice_key: bytes
    bob_key: bytes

    @classmethod
    def open(cls, reactor, history_paths=(":memory:", ":memory:"), config=MessagingConfig()):
        alice, bob = SigningKey.generate(), SigningKey.generate()
        alice_key, bob_key = bytes(alice.verify_key), bytes(bob.verify_key)
        return cls(listen(reactor, alice, bob_key, history_paths[0], config),
                   listen(reactor, bob, alice_key, history_paths[1], config), alice_key, bob_key)

    @defer.inlineCallbacks
    def close(self):
        yield self.alice.close()
        yield self.bob.close()


class Deliveries(EndpointListener):
    """Fires a Deferred per message id when it is delivered, with the reactor's time."""

    def __init__(self, clock):
        self._clock = clock
        self.waiting = {}

    def expect(self, message_id):
        d = self.waiting[message_id] = defer.Deferred()
        return d

    def message_state(self, message_id, state):
        if state == MessageState.DELIVERED and message_id in self.waiting:
            self.waiting.pop(message_id).callback(self._clock.seconds())

    def message_received(self, peer_key, message):
        pass


@defer.inlineCallbacks
def latencies(reactor, contacts, duration, interval=0.02, settle=5.0, text="ping"):
    """Alice sends to Bob every `interval` s for `duration` s (or until `duration`, a
    Deferred, fires); returns each message's send -> delivered in seconds, in the order
    sent, waiting `settle` s more for the last ones (an undelivered one counts as inf)."""
    deliveries = Deliveries(reactor)
    contacts.alice.endpoint.subscribe(deliveries)
    over = duration if isinstance(duration, defer.Deferred) else _later(reactor, duration)
    ended = []

    def end(result):
        ended.append(True)
        return result  # (the caller may wait on `duration` too)

    over.addBoth(end)
    pending = []
    while not ended:
        sent_at = reactor.seconds()
        message_id = contacts.alice.endpoint.send_message(contacts.bob_key, [contacts.bob.addr], text)
        pending.append(deliveries.expect(message_id).addCallback(lambda at, sent_at=sent_at: at - sent_at))
        yield _later(reactor, interval)
    timeout = reactor.callLater(settle, lambda: [d.cancel() for d in pending if not d.called])
    results = yield defer.DeferredList(pending, consumeErrors=True)
    cancel(timeout)
    return [value if ok else float("inf") for ok, value in results]


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _later(reactor, seconds):
    d = defer.Deferred()
    reactor.callLater(seconds, d.callback, None)
    return d
