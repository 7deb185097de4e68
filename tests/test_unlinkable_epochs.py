"""Issue 12, 3: nothing a storage node or an introducer records links one epoch to the next.

A client's presence puts (through a recording DHT double) and its
registrations (through a recording socket) over three short epochs, on a
Clock; its DHT node id across restarts and address changes, on real files."""

import random

from nacl.signing import SigningKey
from twisted.internet.task import Clock

from kadchat.addrvote import AddressVotes, IdRenewal
from kadchat.identity import Identity
from kadchat.nat import natwire
from kadchat.nat.traversal import Traversal, rendezvous_tag
from kadchat.presence import Presence, record_target
from kadchat.publisher import GAP, PresencePublisher
from kadchat.seqcounter import SeqCounter
from kademlia import statefile
from kademlia.node import DHTNode
from tests.test_presence import DictDHT

EPOCH = 30
ALICE = Identity(SigningKey(b"u" * 32), "alice")
HOME = Presence("online", addrs=[("198.51.100.7", 40001)])


class Capture(DictDHT):
    """Every put as a storage node sees it: (time, epoch of the record, seq)."""

    def __init__(self, clock, epochs):
        super().__init__(clock)
        self.log = []
        self._epochs = {record_target(ALICE.public_key, e): e for e in epochs}

    def put(self, item, ttl=None):
        self.log.append((self.clock.seconds(), self._epochs[item.target], item.seq))
        return super().put(item, ttl)


def run_three_epochs(tmp_path, seed):
    clock = Clock()
    clock.advance(1_000_020)
    first = int(clock.seconds() // EPOCH)
    dht = Capture(clock, range(first, first + 5))
    seq = SeqCounter(str(tmp_path / f"seq-{seed}"), clock.seconds, bytes(ALICE.signing_key), EPOCH)
    publisher = PresencePublisher(clock, dht, ALICE, lambda: HOME, seq, epoch_seconds=EPOCH, ttl=60,
                                  refresh=8.0, lead=10.0, rng=random.Random(seed))
    registrations = []
    traversal = Traversal(clock, lambda data, to: registrations.append((clock.seconds(), natwire.decode(data).tag)),
                          ALICE.signing_key, epoch_seconds=EPOCH, keepalive=4.0, lead=10.0,
                          rng=random.Random(seed))
    tags = {rendezvous_tag(ALICE.public_key, e): e for e in range(first, first + 5)}
    publisher.start()
    traversal.start([("127.0.0.10", 6881)])
    while clock.seconds() < (first + 3) * EPOCH:
        clock.advance(0.25)
    publisher.stop()
    traversal.stop()
    return dht.log, [(when, tags[tag]) for when, tag in registrations], first


def closest_across_epochs(events):
    """The shortest time between two events of different epochs."""
    return min(abs(a - b) for a, ea in events for b, eb in events if ea != eb)


def test_puts_and_registrations_of_two_epochs_never_come_in_one_burst(tmp_path):
    for seed in range(5):
        puts, registrations, _ = run_three_epochs(tmp_path, seed)
        assert closest_across_epochs([(when, epoch) for when, epoch, _ in puts]) >= GAP
        assert closest_across_epochs(registrations) >= GAP


def test_seq_numbers_show_no_pattern_across_the_epochs(tmp_path):
    puts, _, first = run_three_epochs(tmp_path, 0)
    # Whatever the clock says of a put, its seq says nothing of it across epochs:
    # seq minus publish time, in microseconds, is unrelated from one epoch to the next.
    skews = {}
    for when, epoch, seq in puts:
        skews.setdefault(epoch, set()).add(seq - int(when * 1_000_000))
    spread = [min(s) for _, s in sorted(skews.items())]
    assert len(spread) >= 3
    assert all(abs(a - b) > 10**12 for i, a in enumerate(spread) for b in spread[i + 1:])
    for epoch in skews:  # within an epoch it still only grows
        seqs = [seq for _, e, seq in puts if e == epoch]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


def test_a_client_has_a_new_node_id_at_every_start_and_keeps_only_its_contacts(tmp_path):
    path = str(tmp_path / "dht-state.json")
    clock = Clock()
    first = DHTNode(clock, state_path=path, keep_id=False)
    first.routing_table.heard_from(b"c" * 20, ("192.0.2.1", 6881))
    first.stop()
    assert "node_id" not in statefile.load(path)
    second = DHTNode(clock, state_path=path, keep_id=False)
    assert second.node_id != first.node_id
    assert second._saved_contacts == [(b"c" * 20, ("192.0.2.1", 6881))]
    second.stop()


def test_a_dedicated_server_keeps_its_node_id(tmp_path):
    path = str(tmp_path / "state.json")
    clock = Clock()
    first = DHTNode(clock, state_path=path)
    first.stop()
    assert DHTNode(clock, state_path=path).node_id == first.node_id


def test_the_node_id_changes_when_the_voted_address_moves_and_contacts_stay():
    clock = Clock()
    node = DHTNode(clock, keep_id=False)
    for i in range(20):
        node.routing_table.heard_from(bytes([i + 1]) * 20, ("192.0.2.%d" % (i + 1), 6881))
    known = {c.node_id for c in node.routing_table.contacts()}
    votes = AddressVotes(clock.seconds)
    node.add_response_observer(votes.add)
    node.add_response_observer(IdRenewal(node, votes))
    ids = [node.node_id]

    def vote(seen):
        for i in range(3):
            for observer in node._observers:
                observer(("192.0.2.%d" % (i + 1), 6881), bytes([i + 1]) * 20, seen)
        ids.append(node.node_id)

    vote(("203.0.113.5", 40000))
    clock.advance(400)  # the old votes age out
    vote(("203.0.113.5", 40000))
    clock.advance(400)
    vote(("198.51.100.9", 40000))  # moved
    assert ids[0] == ids[1] == ids[2] != ids[3]
    assert node.routing_table.own_id == node.node_id
    after = {c.node_id for c in node.routing_table.contacts()}
    assert after <= known and len(after) >= min(len(known), 8)  # as many as the new buckets hold
