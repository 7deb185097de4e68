"""Shared helpers for the DHT tests: signed items, node ids, loopback addresses."""

import gc
import hashlib
import os
import random
import re
import sys

from nacl.signing import SigningKey
from twisted.internet import defer, protocol
from twisted.python.failure import Failure

from kademlia.items import MutableItem
from kademlia.node import DHTNode
from kademlia.settings import DHTSettings
from kademlia.sim import SimClock, SimNetwork


class Signer:
    """An ed25519 key that makes BEP 44 items; deterministic from `seed`."""

    def __init__(self, seed=0):
        self._key = SigningKey(hashlib.sha256(b"signer %d" % seed).digest())
        self.public_key = bytes(self._key.verify_key)

    def sign(self, message):
        return self._key.sign(message).signature

    def item(self, v, seq=1, salt=b""):
        return MutableItem.create(self.public_key, self.sign, v, seq, salt)


def forged(item, **changes):
    """A copy of `item` with fields changed but the old signature kept."""
    fields = {"k": item.k, "salt": item.salt, "seq": item.seq, "v": item.v, "sig": item.sig}
    fields.update(changes)
    return MutableItem(**fields)


def random_ids(count, seed):
    rng = random.Random(seed)
    return [rng.randbytes(20) for _ in range(count)]


def loopback_address(index):
    """A distinct 127.0.x.y per index (x, y in 1..250), so per-IP limits act as between hosts."""
    return f"127.0.{1 + index // 250}.{1 + index % 250}"


class BootstrapSwarm:
    """DHT nodes on one `kademlia.sim.SimNetwork` and a virtual clock, each joining by a
    real bootstrap (unlike `kademlia.simswarm`, which can fill tables from a global view),
    with helpers to drive them. Node ids come from `seed`, so runs repeat."""

    def __init__(self, seed=1, settings=None, latency=None, loss=0.0):
        self.clock = SimClock()
        self.network = SimNetwork(self.clock, seed, latency=latency, loss=loss)
        self.rng = random.Random(seed)
        self.settings = settings or DHTSettings()
        self.nodes = []
        self._froze_gc = False

    def add_node(self, node_id=None, address=None, state_path=None):
        node = DHTNode(self.clock, node_id or self.rng.randbytes(20), self.settings, state_path)
        node.attach(self.network, address or self.network.next_address())
        self.nodes.append(node)
        return node

    def grow(self, count, batch=50):
        """Add `count` nodes, bootstrapping `batch` at a time through the swarm's first
        node (the first one added, if the swarm is empty). Returns the nodes that joined."""
        if not self.nodes:
            self.add_node()
            count -= 1
        first = self.nodes[0]
        added = [self.add_node() for _ in range(count)]
        for start in range(0, len(added), batch):
            self.run(defer.gatherResults([n.bootstrap([first.address]) for n in added[start:start + batch]]))
            if len(self.nodes) >= 500:
                # Thousands of nodes in one process make each full GC pass walk every routing
                # table: quadratic. Parking the settled state outside the collector keeps the
                # simulation linear (a real node, one per process, has no such heap).
                gc.freeze()
                self._froze_gc = True
        return added

    def run(self, d, timeout=120.0, step=0.05):
        """Advance the virtual clock until `d` fires; its result, or its failure raised."""
        results = []
        d.addBoth(results.append)
        deadline = self.clock.seconds() + timeout
        while not results:
            if self.clock.seconds() >= deadline:
                raise AssertionError(f"no result after {timeout} simulated seconds")
            self.clock.advance(step)
        result = results[0]
        if isinstance(result, Failure):
            result.raiseException()
        return result

    def wait(self, seconds):
        """Let `seconds` of virtual time pass."""
        self.clock.advance(seconds)

    def settle(self, seconds=5.0):
        """Let in-flight datagrams and fire-and-forget queries (read-repair) finish."""
        self.wait(seconds)

    def live_nodes(self):
        return [n for n in self.nodes if self.network.is_listening(n.address) and n.address not in self.network._dead]

    def kill(self, node):
        """Silently cut a node off: its datagrams vanish, it never says goodbye."""
        self.network.kill(node.address)

    def nearest(self, target, count=None, nodes=None):
        key = int.from_bytes(target, "big")
        ranked = sorted(nodes if nodes is not None else self.nodes,
                        key=lambda n: int.from_bytes(n.node_id, "big") ^ key)
        return ranked[:count or self.settings.k]

    def holders(self, target, nodes=None):
        """The nodes whose store holds a live item under `target`."""
        return [n for n in (nodes if nodes is not None else self.nodes) if n.store.get(target) is not None]

    def stop(self):
        """Stop every node, drain the network, and give frozen objects back to the GC."""
        for node in self.nodes:
            if node.protocol is not None and node.protocol.transport is not None:
                node.stop()
        self.wait(10)
        if self._froze_gc:
            gc.unfreeze()
            self._froze_gc = False


REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LISTENING = re.compile(rb"listening on ([0-9.]+):([0-9]+)")


class ServerProcess(protocol.ProcessProtocol):
    """`dedicated_server.py` as a child process.

    `started` fires with its (host, port) once it prints its "listening on" line;
    `ended` fires with its exit code. `terminate()` sends SIGTERM (SIGKILL if it
    lingers) and returns `ended`."""

    def __init__(self, reactor):
        self._reactor = reactor
        self.started = defer.Deferred()
        self.ended = defer.Deferred()
        self.stdout = b""
        self.stderr = b""
        self.exit_code = None

    @classmethod
    def spawn(cls, reactor, *args, timeout=15):
        server = cls(reactor)
        argv = [sys.executable, os.path.join(REPO_ROOT, "dedicated_server.py"), *args]
        reactor.spawnProcess(server, sys.executable, argv, env=dict(os.environ), path=REPO_ROOT)
        server.started.addTimeout(timeout, reactor)
        return server

    def outReceived(self, data):
        self.stdout += data
        match = LISTENING.search(self.stdout)
        if match and not self.started.called:
            self.started.callback((match.group(1).decode(), int(match.group(2))))

    def errReceived(self, data):
        self.stderr += data

    def processEnded(self, reason):
        self.exit_code = reason.value.exitCode
        if not self.started.called:
            self.started.errback(RuntimeError(f"server exited before listening: {self.stderr[-500:]!r}"))
        self.ended.callback(self.exit_code)

    def terminate(self, grace=10):
        if self.exit_code is None:
            self.transport.signalProcess("TERM")
            killer = self._reactor.callLater(grace, self._kill)
            self.ended.addBoth(lambda result: (killer.cancel() if killer.active() else None, result)[1])
        return self.ended

    def _kill(self):
        if self.exit_code is None:
            self.transport.signalProcess("KILL")
