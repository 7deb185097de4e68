"""The client side of NAT traversal: rendezvous tags, introductions and relay routes.

A client is known to introducers by a *tag*, derived from its identity key and
the epoch like its presence record: contacts can compute it from the card,
nobody else can, and one epoch's tag says nothing about the next. The client
registers its current and next tags with its introducers every ~20 s, which
also keeps its NAT mapping to them open.

The session layer sees two kinds of virtual address next to plain `(host, port)`
ones; `send` turns them into NAT datagrams:
- `IntroductionRoute(introducer, tag)`: the handshake initiation goes to the
  introducer, which hands it to the callee together with our address as it saw
  it; the callee answers us directly, which opens its own NAT (hole punching).
- `RelayRoute(introducer, tag)`: everything goes through the introducer, which
  sees only sealed datagrams. The last resort.
"""

import struct
from dataclasses import dataclass
from hashlib import blake2b

from twisted.internet import task
from twisted.logger import Logger

from kadchat import natwire, wire


# Dataclasses, not NamedTuples: routes are dict keys and list members next to
# each other, and two NamedTuples with equal fields compare (and hash) equal
# whatever their class, so a relay route vanished as a "duplicate" of the
# introduction route to the same tag.
@dataclass(frozen=True)
class IntroductionRoute:
    introducer: tuple
    tag: bytes


@dataclass(frozen=True)
class RelayRoute:
    introducer: tuple
    tag: bytes


def rendezvous_tag(public_key, epoch):
    """The tag of identity `public_key` at introducers during `epoch`."""
    return blake2b(
        struct.pack(">Q", epoch), digest_size=natwire.TAG_SIZE, key=public_key, person=b"kadchat-rendezv"
    ).digest()


class Traversal:
    log = Logger()

    def __init__(self, clock, send_raw, public_key, epoch_seconds=300, keepalive=20.0):
        self._clock = clock
        self._send_raw = send_raw
        self._public_key = public_key
        self.epoch_seconds = epoch_seconds
        self.keepalive = keepalive
        self.introducers = []  # ours, published in our presence record
        self._extra = set()  # peers' introducers we relay through
        self.observed = {}  # introducer -> our address as it sees it
        self._loop = None

    def epoch(self):
        return int(self._clock.seconds() // self.epoch_seconds)

    def own_tag(self):
        return rendezvous_tag(self._public_key, self.epoch())

    def start(self, introducers):
        self.introducers = list(introducers)
        self._loop = task.LoopingCall(self._register_everywhere)
        self._loop.clock = self._clock
        self._loop.start(self.keepalive, now=True)

    def stop(self):
        if self._loop is not None and self._loop.running:
            self._loop.stop()

    def _register_everywhere(self):
        epoch = self.epoch()
        tags = [rendezvous_tag(self._public_key, e) for e in (epoch, epoch + 1)]
        for introducer in [*self.introducers, *self._extra]:
            for tag in tags:
                self._send_raw(natwire.encode(natwire.Register(tag)), introducer)

    def routes_to(self, peer_key, introducers, relay):
        """Virtual addresses for reaching `peer_key` through its introducers."""
        epoch = self.epoch()
        routes = []
        for introducer in introducers:
            introducer = tuple(introducer)
            for e in (epoch, epoch - 1):  # the peer may not have moved to this epoch's tag yet
                tag = rendezvous_tag(peer_key, e)
                routes.append(IntroductionRoute(introducer, tag))
                if relay:
                    routes.append(RelayRoute(introducer, tag))
            if relay and introducer not in self._extra and introducer not in self.introducers:
                self._extra.add(introducer)  # a relay only serves registered tags
                self._register_everywhere()
        return routes

    def send(self, data, address):
        """The session layer's `send`: plain addresses, or the routes above."""
        if isinstance(address, IntroductionRoute):
            if data[:1] != bytes([wire.INITIATION]):  # only initiations are introduced
                return
            self._send_raw(natwire.encode(natwire.Introduce(address.tag, data)), address.introducer)
        elif isinstance(address, RelayRoute):
            relay = natwire.Relay(address.tag, self.own_tag(), data)
            self._send_raw(natwire.encode(relay), address.introducer)
        else:
            self._send_raw(data, address)

    def handle(self, message, address):
        """A NAT datagram for us as a client; returns (chat datagram, its address) or None."""
        if isinstance(message, natwire.Registered):
            # Only from an introducer we registered with: anyone else could fill
            # the dict, or make us publish addresses of their choosing.
            if address in self.introducers or address in self._extra:
                self.observed[address] = message.observed
        elif isinstance(message, natwire.Introduction):
            return message.payload, message.caller
        elif isinstance(message, natwire.Relayed):
            return message.payload, RelayRoute(address, message.from_tag)
        return None
