"""Issue 12, 3: a loopback capture of a real client over three short epochs shows nothing that
links them: no DHT node id putting two epochs' records, no sequence numbers that carry on from
one epoch's records to the next, no registrations of two epochs' tags together.

A dedicated server and two console clients (client_node.py -N) that are each other's contacts,
with 20 s epochs in kadchat.conf; an AF_PACKET socket on `lo` (root) records every datagram
alice sends. Her card and her presence secret (her data directory) say which record and which
tag each put and each REGISTER is for: what an observer who pooled everything would need to
link them, and still does not find.

Only her puts as the owner count: a put of a (record, seq) she put more than a second
before is her node passing on a replica it stores (republish, hand-over, repair), which
in this swarm of three nodes holds every record, her own included (docs/privacy.md).
"""

import hashlib
import json
import os
import socket
import struct
import threading
import time

import pytest

from kadchat.cards import decode_card
from kadchat.nat import natwire
from kadchat.nat.regproof import rendezvous_tag
from kadchat.presence import record_target
from kademlia import bencode
from tests.client_helpers import client_argv, friends, presence, procs  # noqa: F401 (procs: a fixture)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

EPOCH = 20
CONF = f"epoch_seconds = {EPOCH}\nrecord_ttl = 60\npublish_interval = 8\nclock_skew = 4\n"
ALICE_HOST, BOB_HOST = "127.0.0.5", "127.0.0.6"
GAP = 2.0  # kadchat.publisher.GAP and kadchat.nat.traversal.GAP


class LoopbackCapture:
    """UDP datagrams from `host` on lo: (time, destination, payload)."""

    def __init__(self, host):
        self._host = socket.inet_aton(host)
        self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(0x0800))
        self._sock.bind(("lo", 0))
        self._sock.settimeout(0.2)
        self.datagrams = []
        self._running = True
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while self._running:
            try:
                frame, (_, _, kind, *_) = self._sock.recvfrom(65535)
            except socket.timeout:
                continue
            if kind == socket.PACKET_OUTGOING:
                continue  # each loopback packet is seen twice: keep the incoming copy
            ip = frame[14:]
            header = (ip[0] & 0x0F) * 4
            if ip[9] != socket.IPPROTO_UDP or ip[12:16] != self._host:
                continue
            destination = (socket.inet_ntoa(ip[16:20]), struct.unpack(">H", ip[header + 2:header + 4])[0])
            self.datagrams.append((time.time(), destination, ip[header + 8:]))

    def stop(self):
        self._running = False
        self._thread.join()
        self._sock.close()


def krpc(payload):
    try:
        message = bencode.decode(payload)
    except Exception:
        return None
    return message if isinstance(message, dict) else None


def test_three_epochs_of_a_client_on_the_wire_are_unlinkable(tmp_path, procs):
    if os.geteuid() != 0:
        pytest.skip("an AF_PACKET capture needs root")
    people = friends(tmp_path, ["alice", "bob"])
    for data_dir, _ in people.values():
        (data_dir / "kadchat.conf").write_text(CONF)
    _, server = procs.server()
    capture = LoopbackCapture(ALICE_HOST)
    try:
        alice = procs.spawn(client_argv(people["alice"][0], bootstrap=server, interface=ALICE_HOST), name="alice")
        bob = procs.spawn(client_argv(people["bob"][0], bootstrap=server, interface=BOB_HOST), name="bob")
        alice.expect(presence("bob", "connected"), timeout=30)
        first = int(time.time() // EPOCH) + 1
        while time.time() < (first + 3) * EPOCH + 1:
            time.sleep(0.5)
    finally:
        capture.stop()
    assert alice.quit() == 0 and bob.quit() == 0

    alice_key = decode_card(people["alice"][1])
    secret = bytes.fromhex(json.loads((people["alice"][0] / "presence-secrets.json").read_text())["own"])
    epochs = range(first - 1, first + 4)
    records = {record_target(alice_key, e, s): (e, kind) for e in epochs for s, kind in ((secret, "record"),
                                                                                        (b"", "point"))}
    tags = {rendezvous_tag(alice_key, e, s): e for e in epochs for s in (secret, b"")}

    puts, registrations = [], []  # (time, epoch, kind, node id, seq) and (time, epoch)
    first_put = {}  # (target, seq) -> when she first put it
    for when, _, payload in capture.datagrams:
        if payload[:1] == bytes([natwire.REGISTER]):
            tag = natwire.decode(payload).tag
            assert tag in tags, "a registration of a tag that is not hers"
            registrations.append((when, tags[tag]))
            continue
        message = krpc(payload)
        if message and message.get(b"y") == b"q" and message.get(b"q") == b"put":
            args = message[b"a"]
            target = hashlib.sha1(args[b"k"] + args.get(b"salt", b"")).digest()
            if target in records and when - first_put.setdefault((target, args[b"seq"]), when) < 1.0:
                epoch, kind = records[target]
                puts.append((when, epoch, kind, args[b"id"], args[b"seq"]))
    seen = {e for _, e, _, _, _ in puts}
    assert set(range(first, first + 3)) <= seen, "her records of the three epochs were put"
    assert {e for _, e in registrations} >= set(range(first, first + 3))

    timeline = [f"{w % 100:.2f} e{e - first} {k} {i.hex()[:6]}" for w, e, k, i, _ in sorted(puts)]
    # No node id puts records of two epochs.
    ids_by_epoch = {}
    for _, epoch, _, node_id, _ in puts:
        ids_by_epoch.setdefault(epoch, set()).add(node_id)
    for e in ids_by_epoch:
        for other in ids_by_epoch:
            if other != e:
                assert not ids_by_epoch[e] & ids_by_epoch[other], (
                    f"one node id put records of epochs {e} and {other}: {timeline}")

    # Sequence numbers: each record's grow within its epoch, and nothing carries on across them.
    for kind in ("record", "point"):
        lasts = {}
        for _, epoch, k, _, seq in sorted(puts):
            if k == kind:
                lasts.setdefault(epoch, []).append(seq)
        for e, seqs in lasts.items():
            assert seqs == sorted(seqs)
        for e in lasts:
            if e + 1 in lasts:
                assert abs(lasts[e + 1][0] - lasts[e][-1]) > 2**40, f"{kind} seq of epoch {e + 1} follows on from {e}"

    # Never two epochs' puts, or two epochs' registrations, within GAP of each other.
    for events, what in ((sorted((w, e) for w, e, *_ in puts), "puts"), (sorted(registrations), "registrations")):
        for (t1, e1), (t2, e2) in zip(events, events[1:]):
            assert e1 == e2 or t2 - t1 >= GAP - 0.2, f"{what} of epochs {e1} and {e2} {t2 - t1:.2f} s apart"
    print(f"\n{len(capture.datagrams)} datagrams from alice, {len(puts)} puts of her records "
          f"({len(ids_by_epoch)} epochs, {sum(map(len, ids_by_epoch.values()))} node ids), "
          f"{len(registrations)} registrations")
