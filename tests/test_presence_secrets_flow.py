"""Presence under a secret (issue 12): the publisher's two records and its rotation, the
tracker's fall-back to the request point; on a Clock with an in-memory DHT."""

from dataclasses import replace

from kadchat.presence import OFFLINE, ONLINE, Presence, open_record, record_target
from kadchat.presencesecret import PresenceSecrets
from kadchat.publisher import PresencePublisher
from kadchat.seqcounter import SeqCounter
from kadchat.tracker import PresenceTracker
from tests.test_presence import ALICE, E0, T0, DictDHT, Events, _clock

HOME = Presence(ONLINE, addrs=[("198.51.100.7", 40001)], nat="consistent", introducers=[("203.0.113.1", 6881)])


def published(tmp_path, clock, dht, ids=None):
    secrets = PresenceSecrets(str(tmp_path / "secrets.json"))
    secrets.load()
    seq = SeqCounter(str(tmp_path / "seq"), clock.seconds, bytes(ALICE.signing_key))
    points = SeqCounter(str(tmp_path / "rseq"), clock.seconds, b"other" * 8)
    publisher = PresencePublisher(clock, dht, ALICE, lambda: HOME, seq, secrets=secrets, request_seq=points,
                                  renew_id=lambda: ids.append(clock.seconds()) if ids is not None else None)
    publisher.start()
    return publisher, secrets


def held(dht, epoch, secret):
    item = dht.held(record_target(ALICE.public_key, epoch, secret))
    return None if item is None else open_record(ALICE.public_key, epoch, item, secret)


def test_the_card_alone_finds_the_request_point_only_and_the_secret_finds_the_record(tmp_path):
    clock = _clock()
    dht = DictDHT(clock)
    publisher, secrets = published(tmp_path, clock, dht)
    assert held(dht, E0, secrets.own) == replace(HOME, ts=T0, secret=secrets.own)
    point = held(dht, E0, b"")
    assert point == Presence(ONLINE, introducers=HOME.introducers, ts=T0)
    assert point.addrs == () and len(dht.items) == 2
    publisher.stop()


def test_rotation_leaves_the_old_secret_only_offline_and_the_new_one_current(tmp_path):
    clock = _clock()
    dht = DictDHT(clock)
    publisher, secrets = published(tmp_path, clock, dht)
    clock.advance(5)
    old = secrets.rotate()
    publisher.rotated(old)
    assert held(dht, E0, old).status == OFFLINE and held(dht, E0, old).addrs == ()
    assert held(dht, E0, secrets.own).addrs == HOME.addrs
    publisher.stop()


def test_a_contact_with_an_old_secret_falls_back_to_the_request_point(tmp_path):
    clock = _clock()
    dht = DictDHT(clock)
    publisher, secrets = published(tmp_path, clock, dht)
    holds = {"secret": secrets.own}
    tracker = PresenceTracker(clock, dht, [("alice", ALICE.public_key)], secret_of=lambda key: holds["secret"])
    events = Events()
    tracker.subscribe(events)
    tracker.refresh()
    assert tracker.presence("alice").addrs == HOME.addrs and tracker.presence("alice").secret == secrets.own
    clock.advance(5)
    publisher.rotated(secrets.rotate())
    tracker.refresh()  # "offline" under the old secret: the request point says she is there
    found = tracker.presence("alice")
    assert found.secret == b"" and found.addrs == () and found.introducers == HOME.introducers
    holds["secret"] = secrets.own  # her session brought the new one
    clock.advance(5)
    publisher.publish_now()
    tracker.refresh()
    assert tracker.presence("alice").addrs == HOME.addrs
    publisher.stop()


def test_no_node_id_puts_records_of_two_epochs(tmp_path):
    clock = _clock()
    dht = DictDHT(clock)
    renewals = []
    puts = []
    real_put = dht.put
    dht.put = lambda item, ttl=None: puts.append((len(renewals), item.target)) or real_put(item, ttl)
    publisher, secrets = published(tmp_path, clock, dht, renewals)
    while clock.seconds() < T0 + 3 * 300:
        clock.advance(1)
    targets = {record_target(ALICE.public_key, e, s): e for e in range(E0, E0 + 5) for s in (b"", secrets.own)}
    epochs_of_id = {}
    for generation, target in puts:
        epochs_of_id.setdefault(generation, set()).add(targets[target])
    assert len(epochs_of_id) >= 4 and all(len(epochs) == 1 for epochs in epochs_of_id.values())
    publisher.stop()
