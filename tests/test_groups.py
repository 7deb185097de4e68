"""kadchat.groups: the membership log, signed messages and their order, the store, and sync
between engines whose records travel through an in-memory stand-in for sessions
(real SQLite files; the real sessions are tests/test_groups_e2e.py's)."""

from collections import deque

import pytest
from nacl.signing import SigningKey
from twisted.internet.task import Clock

from kadchat.errors import UserError
from kadchat.groups import messages, syncwire
from kadchat.groups.engine import PAGE, Groups, GroupsConfig
from kadchat.groups.membership import (ADD, MAX_MEMBERS, REMOVE, Entry, LogError, MembershipLog, decode_entry)
from kadchat.groups.messages import GroupMessage, MessageError
from kadchat.groups.store import GroupStore


# -- the membership log ------------------------------------------------------------------

def test_the_creator_is_the_first_admin_and_the_id_names_the_creation():
    alice = SigningKey.generate()
    log = MembershipLog.create(alice, "friends")
    assert log.title == "friends" and log.members[bytes(alice.verify_key)].admin
    again = MembershipLog.from_entries(log.group_id, [decode_entry(e.encode()) for e in log.entries])
    assert again.members == log.members
    with pytest.raises(LogError):  # the same creation cannot be passed off as another group
        MembershipLog.from_entries(bytes(16), log.entries)


def test_only_admins_add_and_remove_and_members_may_leave():
    alice, bob, carol = (SigningKey.generate() for _ in range(3))
    log = MembershipLog.create(alice, "g")
    log.sign(alice, ADD, bytes(bob.verify_key), "bob")
    with pytest.raises(LogError, match="non-admin"):
        log.sign(bob, ADD, bytes(carol.verify_key), "carol")
    with pytest.raises(LogError, match="non-admin"):
        log.sign(bob, REMOVE, bytes(alice.verify_key))
    log.sign(bob, REMOVE, bytes(bob.verify_key))  # leaving
    assert set(log.members) == {bytes(alice.verify_key)}
    assert log.was_member(bytes(bob.verify_key), 2) and not log.was_member(bytes(bob.verify_key), 3)


def test_a_forged_or_reordered_entry_does_not_verify():
    alice, bob, mallory = (SigningKey.generate() for _ in range(3))
    log = MembershipLog.create(alice, "g")
    real = MembershipLog.create(alice, "g")
    entry = log.sign(alice, ADD, bytes(bob.verify_key), "bob")
    copy = MembershipLog.from_entries(log.group_id, log.entries[:1])
    tampered = Entry(**{**entry.__dict__, "subject": bytes(mallory.verify_key)})
    with pytest.raises(LogError, match="signature"):
        copy.append(tampered)
    stolen = Entry(**{**entry.__dict__, "signer": bytes(mallory.verify_key)})
    with pytest.raises(LogError, match="signature"):
        copy.append(stolen)
    with pytest.raises(LogError):  # an entry of another group's chain
        real.append(Entry(**{**entry.__dict__, "group_id": real.group_id}))


def test_a_group_has_at_most_the_hard_limit_of_members():
    alice = SigningKey.generate()
    log = MembershipLog.create(alice, "big")
    for i in range(MAX_MEMBERS - 1):
        log.sign(alice, ADD, bytes(SigningKey.generate().verify_key), f"m{i}")
    with pytest.raises(LogError, match="at most"):
        log.sign(alice, ADD, bytes(SigningKey.generate().verify_key), "one too many")


# -- engines over an in-memory network ------------------------------------------------------

class Net:
    """Records between engines, delivered in order by `run()`; `online` decides who has sessions."""

    def __init__(self, tmp_path, names, clock=None, config=GroupsConfig()):
        self.clock = clock or Clock()
        self.clock.advance(1_700_000_000)
        self.queue = deque()
        self.online = set(names)
        self.shown = {name: [] for name in names}
        self.keys = {name: SigningKey.generate() for name in names}
        self.by_key = {bytes(k.verify_key): name for name, k in self.keys.items()}
        self.engines = {}
        for name in names:
            self.engines[name] = Groups(
                self.clock, self.keys[name], GroupStore(tmp_path / f"{name}.db"),
                send=lambda key, payload, me=name: self._send(me, key, payload),
                has_session=lambda key, me=name: me in self.online and self.by_key[key] in self.online,
                on_message=lambda group, m, me=name: self.shown[me].append(m.text), config=config)
            self.engines[name].start()
        self.sent = []  # (sender, receiver, record type)

    def key(self, name):
        return bytes(self.keys[name].verify_key)

    def _send(self, sender, key, payload):
        if sender not in self.online or self.by_key[key] not in self.online:
            return False
        self.sent.append((sender, self.by_key[key], payload[0]))
        self.queue.append((sender, self.by_key[key], payload))
        return True

    def run(self, ticks=5):
        for _ in range(ticks):
            while self.queue:
                sender, receiver, payload = self.queue.popleft()
                if receiver in self.online:
                    self.engines[receiver].record_received(self.key(sender), payload)
            self.clock.advance(1.0)  # a sync round

    def group(self, name, group="g"):
        return self.engines[name].named(group)

    def history(self, name, group="g"):
        return [m.text for m in self.engines[name].history(self.group(name, group))]


def three(tmp_path):
    net = Net(tmp_path, ["alice", "bob", "carol"])
    group = net.engines["alice"].create("g")
    net.engines["alice"].add(group, net.key("bob"), "bob")
    net.engines["alice"].add(group, net.key("carol"), "carol")
    net.run()
    return net


def test_added_members_get_the_group_and_everyone_the_same_history_in_the_same_order(tmp_path):
    net = three(tmp_path)
    for i in range(5):
        for name in ("alice", "bob", "carol"):
            net.engines[name].send(net.group(name), f"{name} {i}")  # before hearing the others': concurrent
    net.run()
    histories = [net.history(name) for name in ("alice", "bob", "carol")]
    assert len(histories[0]) == 15 and len(set(histories[0])) == 15
    assert histories[0] == histories[1] == histories[2]
    for name in ("alice", "bob", "carol"):  # shown once each: the 10 of the others
        assert sorted(net.shown[name]) == sorted(t for t in histories[0] if not t.startswith(name))


def test_concurrent_messages_are_merged_by_the_next_one(tmp_path):
    net = three(tmp_path)
    first = net.engines["alice"].send(net.group("alice"), "first")
    net.run()
    net.online = {"bob"}
    b = net.engines["bob"].send(net.group("bob"), "from bob")
    net.online = {"carol"}
    c = net.engines["carol"].send(net.group("carol"), "from carol")
    assert b.heads == c.heads == (first.id,) and b.lamport == c.lamport == 2
    net.online = {"alice", "bob", "carol"}
    net.run()
    store = net.engines["alice"]._store
    assert set(store.heads(net.group("alice").group_id)) == {b.id, c.id}
    merged = net.engines["alice"].send(net.group("alice"), "merged")
    assert set(merged.heads) == {b.id, c.id} and merged.lamport == 3
    net.run()
    for name in ("alice", "bob", "carol"):
        assert net.engines[name]._store.heads(net.group(name).group_id) == (merged.id,)
        assert net.history(name)[-1] == "merged"


def test_a_member_offline_catches_up_from_a_third_once_the_author_is_gone_in_pages(tmp_path):
    net = three(tmp_path)
    net.online = {"alice", "bob"}
    written = [f"while carol was away {i}" for i in range(2 * PAGE + 3)]
    for i, text in enumerate(written):
        net.clock.advance(2.5)  # within the rate limit
        net.engines["alice" if i % 2 else "bob"].send(net.group("alice" if i % 2 else "bob"), text)
    net.run()
    net.online = {"bob", "carol"}  # alice, who wrote half of them, is gone
    net.run(ticks=6)
    assert sorted(net.shown["carol"]) == sorted(written)
    assert net.history("carol") == net.history("bob")


def test_a_removed_member_is_sent_nothing_after_the_removal(tmp_path):
    net = three(tmp_path)
    net.engines["alice"].send(net.group("alice"), "before")
    net.run()
    net.sent.clear()
    net.engines["alice"].remove(net.group("alice"), net.key("carol"))
    net.engines["alice"].send(net.group("alice"), "after, from alice")
    net.run()  # bob hears of the removal (what he wrote before that is concurrent with it)
    net.engines["bob"].send(net.group("bob"), "after, from bob")
    net.run()
    assert [r for r in net.sent if r[1] == "carol"] == [("alice", "carol", syncwire.ENTRY)]  # her removal only
    assert net.shown["carol"] == ["before"]
    assert not net.group("carol").log.members.get(net.key("carol"))  # carol learnt she is out
    assert sorted(net.history("bob")[-2:]) == ["after, from alice", "after, from bob"]
    with pytest.raises(UserError):
        net.engines["carol"].send(net.group("carol"), "still here?")


def deliver(net, to, message):
    net.engines[to].record_received(net.key("alice"), syncwire.encode_message(message.encode()))


def test_forged_messages_are_dropped(tmp_path):
    net = three(tmp_path)
    group = net.group("bob")
    good = net.engines["alice"].send(net.group("alice"), "real")
    net.run()
    # Altered text: the signature no longer verifies.
    altered = GroupMessage(**{**good.__dict__, "text": "fake", "seq": 2})
    deliver(net, "bob", altered)
    # Signed well, by someone who is not a member.
    stranger = SigningKey.generate()
    outsider = messages.sign(GroupMessage(group.group_id, bytes(stranger.verify_key), 1, 9, good.time_ms,
                                          len(group.log), (), "let me in"), stranger)
    deliver(net, "bob", outsider)
    # A member's key in the author field, signed by another.
    impostor = GroupMessage(group.group_id, net.key("carol"), 1, 9, good.time_ms, len(group.log), (), "carol?",
                            stranger.sign(b"x").signature)
    deliver(net, "bob", impostor)
    assert net.shown["bob"] == ["real"] and net.history("bob") == ["real"]
    with pytest.raises(MessageError):
        messages.decode(altered.encode())


def test_an_author_over_the_rate_limit_is_dropped_and_we_cannot_exceed_it(tmp_path):
    net = Net(tmp_path, ["alice", "bob"], config=GroupsConfig(rate=3))
    group = net.engines["alice"].create("g")
    net.engines["alice"].add(group, net.key("bob"), "bob")
    net.run()
    for i in range(3):
        net.engines["alice"].send(group, f"m{i}")
    with pytest.raises(UserError, match="a minute"):
        net.engines["alice"].send(group, "too many")
    key = net.keys["alice"]
    flood = messages.sign(GroupMessage(group.group_id, net.key("alice"), 4, 4, int(net.clock.seconds() * 1000),
                                       len(group.log), (), "flood"), key)
    net.run(ticks=1)
    deliver(net, "bob", flood)
    assert net.history("bob") == ["m0", "m1", "m2"]


def test_groups_and_history_survive_a_restart(tmp_path):
    net = three(tmp_path)
    net.engines["bob"].send(net.group("bob"), "kept")
    net.run()
    net.engines["carol"].close()
    again = Groups(net.clock, net.keys["carol"], GroupStore(tmp_path / "carol.db"), lambda *a: False,
                   lambda key: False, lambda *a: None)
    again.start()
    group = again.named("g")
    assert set(group.log.members) == {net.key(n) for n in ("alice", "bob", "carol")}
    assert [m.text for m in again.history(group)] == ["kept"]


def test_malformed_records_are_dropped_quietly(tmp_path):
    net = three(tmp_path)
    bob = net.engines["bob"]
    for junk in (b"\x0c", b"\x0c" + bytes(19), b"\x0d" + bytes(16), b"\x0e" + bytes(5), b"\x0f" + bytes(40),
                 b"\x0f" + bytes(300)):
        bob.record_received(net.key("alice"), junk)
    assert net.history("bob") == []


def test_members_in_sync_exchange_a_digest_only_every_quiet_interval(tmp_path):
    net = three(tmp_path)
    net.run(ticks=12)  # settled
    net.sent.clear()
    net.run(ticks=20)  # 20 s with nothing new: two digests per ordered pair of members
    assert len(net.sent) == 2 * 6 and {r[2] for r in net.sent} == {syncwire.SUMMARY}
    net.sent.clear()
    net.engines["bob"].send(net.group("bob"), "news")
    net.run(ticks=1)
    assert sorted(r[2] for r in net.sent if r[0] == "bob") == [syncwire.MESSAGE] * 2  # pushed, no summaries
    in_sync = net.engines["bob"]._summary(net.group("bob"), full=False)
    assert len(syncwire.encode_summary(in_sync)) == 36  # what members in sync exchange


def test_logs_of_groups_we_are_not_in_take_bounded_room_for_a_bounded_time(tmp_path):
    from kadchat.groups.engine import MAX_OFFERED, OFFER_TIMEOUT
    net = Net(tmp_path, ["alice", "bob"])
    for i in range(MAX_OFFERED + 3):  # alice's groups without bob: offered to him, never his
        group = net.engines["alice"].create(f"g{i}")
        net.engines["bob"].record_received(net.key("alice"), syncwire.encode_entry(
            group.group_id, group.log.entries[0].encode()))
    assert len(net.engines["bob"]._offered) == MAX_OFFERED
    net.clock.advance(OFFER_TIMEOUT + 1)
    net.engines["bob"].sync()
    assert net.engines["bob"]._offered == {}
    real = net.engines["alice"].create("real")
    net.engines["alice"].add(real, net.key("bob"), "bob")
    net.run()
    assert [g.name for g in net.engines["bob"].groups()] == ["real"]


def test_summaries_round_trip():
    full = syncwire.summary(bytes(16), 3, {0: 5, 2: 1}, True)
    assert syncwire.decode(syncwire.encode_summary(full)) == full
    empty = syncwire.summary(bytes(16), 1, {}, True)
    assert syncwire.decode(syncwire.encode_summary(empty)) == empty
    digest = syncwire.summary(bytes(16), 3, {0: 5, 2: 1}, False)
    assert syncwire.decode(syncwire.encode_summary(digest)) == digest and digest.digest == full.digest


def test_a_removed_member_who_missed_the_removal_cannot_go_on_writing(tmp_path):
    net = three(tmp_path)
    net.engines["carol"].send(net.group("carol"), "carol before")
    net.run()
    net.online = {"alice", "bob"}  # carol is away when alice removes her
    net.engines["alice"].remove(net.group("alice"), net.key("carol"))
    net.run()
    net.online = {"alice", "bob", "carol"}
    net.engines["carol"].send(net.group("carol"), "carol after")  # back, before she hears of it
    net.run()
    assert net.history("bob") == ["carol before"] and net.history("alice") == ["carol before"]
    assert net.group("bob").log.cuts == {net.key("carol"): 1}
