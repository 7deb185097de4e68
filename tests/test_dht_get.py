"""DHTNode.get: never an item whose own signature does not verify (even when a responder
reuses the genuine signature on another seq or value), and cancellable."""

from twisted.internet import defer

from kademlia.node import DHTNode
from tests.dht_helpers import BootstrapSwarm, Signer


class SignatureCopier(DHTNode):
    """Answers `get` for an item it holds with the genuine signature on a forged item."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._honest_get = self.query_handlers[b"get"]
        self.query_handlers[b"get"] = self._copy_signature

    def _copy_signature(self, args, address):
        values = self._honest_get(args, address)
        if b"sig" in values:
            values[b"seq"] = 2**63 - 1
            values[b"v"] = b"FORGED"
        return values


def test_a_copied_signature_on_a_higher_seq_is_not_taken_for_the_item():
    swarm = BootstrapSwarm(seed=44)
    swarm.grow(12)
    liars = []
    for _ in range(4):  # some of the k closest to anything will be liars
        liar = SignatureCopier(swarm.clock, swarm.rng.randbytes(20), swarm.settings)
        liar.attach(swarm.network, swarm.network.next_address())
        swarm.nodes.append(liar)
        liars.append(liar)
        swarm.run(liar.bootstrap([swarm.nodes[0].address]))
    items = [Signer(seed).item(b"genuine", seq=5) for seed in range(8)]
    for item in items:
        swarm.run(swarm.nodes[1].put(item))
    swarm.settle()
    assert any(liar.store.get(item.target) for liar in liars for item in items), "no liar holds an item"
    for item in items:
        for reader in swarm.nodes[2:10]:
            assert swarm.run(reader.get(item.target)) == item
    swarm.stop()


def test_a_cancelled_get_fails_at_once_and_asks_nobody_else():
    swarm = BootstrapSwarm(seed=45, latency=0.2)
    swarm.grow(30)
    reader = swarm.nodes[3]
    d = reader.get(Signer(1).item(b"x").target)
    swarm.wait(0.25)  # the first queries are out, their answers not yet in
    sent = reader.protocol.stats.sent
    d.cancel()
    failures = []
    d.addErrback(failures.append)
    swarm.wait(5)
    assert failures and failures[0].check(defer.CancelledError)
    assert reader.protocol.stats.sent == sent
    assert reader.protocol.pending_count() == 0
    swarm.stop()
