"""What storage nodes hold and see of dead drops: every datagram they receive and every
item they store, on a simulated swarm where a writes to b across two slots, b reads
and acknowledges, and a collects the receipts. None of it may contain an identity key
(ed25519 or X25519), a card, a username, a message text or id, or a key that is
the same in two slots."""

import os

from nacl.bindings import crypto_sign_ed25519_pk_to_curve25519
from nacl.signing import SigningKey

from kadchat.deaddrop import DROP_TTL, SLOT_SECONDS, Pair
from kadchat.dropstore import DropStore
from kadchat.history import History
from kadchat.identity import Identity
from kadchat.mailbox import DropReader, DropWriter, DHTCalls
from kademlia.settings import DHTSettings
from kademlia.simswarm import SimSwarm
from tests.scenario_recipes import ReadOnlyNode

T0 = 1_800_000_000.0


class Wall:
    def __init__(self, clock):
        self.clock = clock

    def seconds(self):
        return T0 + self.clock.seconds()

    def callLater(self, *args, **kw):
        return self.clock.callLater(*args, **kw)


def test_storage_nodes_see_no_identity_and_no_key_stable_across_slots(tmp_path):
    swarm = SimSwarm.build(40, seed=5, settings=DHTSettings(max_ttl=DROP_TTL))
    (a_node, b_node), joined = swarm.join(2, factory=ReadOnlyNode)
    swarm.run_all([joined])
    clients = {a_node.address, b_node.address}
    seen = []
    send = swarm.network._send

    def capture(src, data, dst):
        if dst not in clients:
            seen.append(data)
        return send(src, data, dst)
    swarm.network._send = capture

    alice, bob = Identity(SigningKey(os.urandom(32)), "alice"), Identity(SigningKey(os.urandom(32)), "bob")
    wall = Wall(swarm.clock)
    history = History(tmp_path / "a.sqlite3")
    store = DropStore(tmp_path / "a.db")
    writer = DropWriter(wall, DHTCalls(wall, a_node), lambda p: Pair(alice.signing_key, bob.public_key), store,
                        history, lambda p: False, lambda p, i, s: history.set_state(p, i, s))
    texts, ids = [], []
    for hour in range(2):
        for n in range(2):
            ids.append(os.urandom(16))
            texts.append(f"secret words {hour} {n}")
            history.add_outgoing(bob.public_key, ids[-1], texts[-1], wall.seconds())
        swarm.run_all([writer.write(bob.public_key)])
        positions = [d.position for d in store.drops()]
        swarm.advance(SLOT_SECONDS)
    assert len({p.slot for p in positions}) == 2
    got = []
    reader = DropReader(wall, DHTCalls(wall, b_node), lambda p: Pair(bob.signing_key, alice.public_key),
                        DropStore(tmp_path / "b.db"), lambda p, m, base: got.append(m.text))
    swarm.run_all([reader.read(alice.public_key)])
    swarm.run_all([writer.write(bob.public_key)])
    assert got == texts and store.drops() == []

    held = [item for node in swarm.nodes for item, _ in node.store.items()]
    assert len(held) >= 4
    captured = b"".join(seen) + b"".join(i.k + i.encoded_v + i.sig for i in held)
    secrets = [texts[0].encode(), b"secret words", b"alice", b"bob"]
    for who in (alice, bob):
        secrets += [who.public_key, crypto_sign_ed25519_pk_to_curve25519(who.public_key), who.card.encode()]
    secrets += ids
    for secret in secrets:
        assert secret not in captured, secret
    # One key per position: a key seen by storage nodes names one drop, in one slot, and nothing else.
    keys = {}
    for item in held:
        keys.setdefault(item.k, set()).add(item.target)
    assert len(keys) == len(positions) and all(len(t) == 1 for t in keys.values())
    for node in swarm.nodes:
        node.stop()
