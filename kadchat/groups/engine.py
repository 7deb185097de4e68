"""Groups: the groups this client is in, and keeping every member's copy the same.

Whenever two members have a session (kadchat.sessions) they send each other a summary
of each group they share: at once when the session comes up, within `sync_interval`
of our copy changing, and every `quiet_interval` anyway (repairing a lost datagram).
Each asks for the log entries and the pages of messages it lacks, from whoever has
them, and asks again every `sync_interval` from the last summary it heard while it is
still behind: a member that was offline catches up from any member online, page by
page; the authors need not be. A new message of ours goes at once to every member
with a session.

Nothing of a group goes to a peer that is not a current member by our log: once the
admin's REMOVE is in, a removed member is sent no new entry or message (the entry that
removes them excepted: they learn they are out). A message is kept only if its
signature verifies, its author was a member under the log prefix it names (`epoch`),
and the author has not sent more than `rate` messages in the minute before it.
"""

from dataclasses import dataclass

from twisted.logger import Logger

from kadchat.errors import UserError
from kadchat.groups import membership, messages, syncwire
from kadchat.groups.membership import ADD, REMOVE, LogError, MembershipLog
from kadchat.groups.messages import GroupMessage, MessageError
from kademlia.ratelimit import TokenBucket
from kademlia.timers import Loop

PAGE = 16  # entries or messages answering one WANT
MAX_OFFERED = 8  # groups we are being told of but do not hold yet, in memory
OFFER_TIMEOUT = 60.0  # seconds to receive such a log (one naming us), then it is dropped
MAX_CLOCK_AHEAD_MS = 600_000  # a message stamped further in the future is dropped


@dataclass(frozen=True)
class GroupsConfig:
    sync_interval: float = 1.0
    quiet_interval: float = 10.0  # a summary to each member at least this often while nothing changes
    rate: int = 30  # messages per author per minute (by the author's clock)
    records_per_second: float = 100.0  # group records handled per peer, sustained
    record_burst: float = 400.0


@dataclass
class Group:
    group_id: bytes
    name: str  # ours, unique among our groups
    log: MembershipLog


class Groups:
    log = Logger()

    def __init__(self, clock, signing_key, store, send, has_session, on_message, config=GroupsConfig()):
        """`send(peer_key, payload) -> bool` over the session; `on_message(group, GroupMessage)`
        for each new message, once, after it is stored."""
        self._clock = clock
        self._key = signing_key
        self.me = bytes(signing_key.verify_key)
        self._store = store
        self._send = send
        self._has_session = has_session
        self._on_message = on_message
        self._config = config
        self._groups = {}  # group id -> Group
        self._offered = {}  # group id -> (MembershipLog being received, not naming us yet; since when)
        self._buckets = {}
        self._told = {}  # (group id, peer) -> when we last sent them a summary
        self._heard = {}  # (group id, peer) -> their last full summary, while it has what we lack
        self._asked = {}  # (group id, slot) -> (from seq, when): one member at a time answers a page
        self._loop = Loop(clock, config.sync_interval, self.sync)

    def start(self):
        for gid, name, log in self._store.groups():
            self._groups[gid] = Group(gid, name, log)
        self._loop.start()

    def stop(self):
        return self._loop.stop()

    def close(self):
        self._store.close()

    # -- what the service calls ----------------------------------------------------

    def groups(self):
        return sorted(self._groups.values(), key=lambda g: g.name.casefold())

    def named(self, name):
        for group in self._groups.values():
            if group.name == name:
                return group
        raise UserError(f"no group named {name!r}")

    def create(self, name):
        if not 0 < len(name.encode("utf-8")) <= membership.MAX_NAME_BYTES or name != name.strip() or " " in name:
            raise UserError(f"a group name is 1 to {membership.MAX_NAME_BYTES} bytes, without spaces")
        if self._store.has_name(name):
            raise UserError(f"a group named {name!r} exists already")
        log = MembershipLog.create(self._key, name)
        return self._adopt(log, name)

    def add(self, group, key, name):
        self._admin(group)
        if key in group.log.members:
            raise UserError(f"{name} is in {group.name} already")
        entry = self._sign(group, ADD, key, name[:membership.MAX_NAME_BYTES])
        self._push_entries(group, group.log.entries, [key])  # they learn the whole log
        self._push_entries(group, [entry], [k for k in group.log.members if k != key])

    def remove(self, group, key):
        self._admin(group)
        if key not in group.log.members:
            raise UserError(f"not a member of {group.name}")
        self._remove(group, key)

    def leave(self, group):
        if self.me not in group.log.members:
            raise UserError(f"you are not in {group.name} any more")
        self._remove(group, self.me)

    def send(self, group, text):
        if self.me not in group.log.members:
            raise UserError(f"you are not in {group.name} any more")
        size = len(text.encode("utf-8"))
        if not 0 < size <= messages.MAX_TEXT_BYTES:
            raise UserError(f"a group message has 1 to {messages.MAX_TEXT_BYTES} bytes of text, not {size}")
        now_ms = int(self._clock.seconds() * 1000)
        if self._store.sent_since(group.group_id, self.me, now_ms - 60_000) >= self._config.rate:
            raise UserError(f"at most {self._config.rate} messages a minute to a group")
        gid = group.group_id
        message = messages.sign(GroupMessage(
            gid, self.me, self._store.last_seq(gid, self.me) + 1, self._store.lamport(gid) + 1, now_ms,
            len(group.log), self._store.heads(gid), text), self._key)
        self._store.add_message(message)
        record = syncwire.encode_message(message.encode())
        for key in self._others(group):
            self._send(key, record)
        return message

    def history(self, group, limit=200, before=None):
        return self._store.history(group.group_id, limit, before)

    def session_ready(self, peer_key):
        for group in self._groups.values():
            if peer_key in group.log.members and self.me in group.log.members:
                self._tell_summary(group, peer_key)

    def sync(self):
        now = self._clock.seconds()
        for gid, (_, since) in list(self._offered.items()):
            if now - since > OFFER_TIMEOUT:  # a log that never named us: room for real invitations
                del self._offered[gid]
        for group in self._groups.values():
            if self.me not in group.log.members:
                continue
            for key in self._others(group):
                if now - self._told.get((group.group_id, key), -self._config.quiet_interval) >= self._config.quiet_interval:
                    self._tell_summary(group, key)
        for (gid, peer), summary in list(self._heard.items()):
            group = self._groups.get(gid)
            if group is not None and self._has_session(peer):
                self._ask(group, peer, summary)  # still behind: ask again
            else:
                del self._heard[gid, peer]

    def _tell_summary(self, group, key, full=False):
        self._told[group.group_id, key] = self._clock.seconds()
        self._send(key, syncwire.encode_summary(self._summary(group, full)))

    # -- records from peers --------------------------------------------------------------

    def record_received(self, peer_key, payload):
        if not self._within_budget(peer_key):
            return
        try:
            record = syncwire.decode(payload)
            handle = {syncwire.Summary: self._summary_received, syncwire.Entry: self._entry_received,
                      syncwire.Want: self._want_received, syncwire.Message: self._message_received}[type(record)]
            handle(peer_key, record)
        except (syncwire.SyncError, LogError, MessageError) as e:
            self.log.debug("group record from {peer} dropped: {why}", peer=peer_key[:4].hex(), why=e)

    def _summary_received(self, peer, summary):
        group = self._groups.get(summary.group_id)
        if group is None:
            if summary.group_id in self._offered or len(self._offered) < MAX_OFFERED:
                start = len(self._offered[summary.group_id][0]) if summary.group_id in self._offered else 0
                self._send(peer, syncwire.encode_want(syncwire.Want(summary.group_id, syncwire.WANT_LOG, 0, start)))
            return
        log = group.log
        if summary.log_length > len(log):
            self._send(peer, syncwire.encode_want(syncwire.Want(group.group_id, syncwire.WANT_LOG, 0, len(log))))
            return  # the next summary, with our log caught up, compares the messages
        if peer not in log.members or self.me not in log.members:
            self._heard.pop((group.group_id, peer), None)
            return
        if summary.log_length < len(log):
            self._push_entries(group, log.entries[summary.log_length:summary.log_length + PAGE], [peer])
        ours = self._summary(group, full=True)
        if summary.digest == ours.digest and summary.log_length == len(log):
            self._heard.pop((group.group_id, peer), None)
            return  # in sync
        if not summary.full:  # they hold something else: tell them all we hold, so they can ask
            self._tell_summary(group, peer, full=True)
            return
        self._ask(group, peer, summary)
        if any(seq > summary.frontiers.get(slot, 0) for slot, seq in ours.frontiers.items()):
            self._tell_summary(group, peer, full=True)  # and they lack some of ours

    def _ask(self, group, peer, summary):
        """WANTs for what `summary` (full) has that we lack; remembered while there is any."""
        behind = False
        now = self._clock.seconds()
        for slot, seq in summary.frontiers.items():
            author = group.log.slots.get(slot)
            if author is not None:
                have = self._store.frontier(group.group_id, author)
                if seq > have:
                    behind = True
                    asked = self._asked.get((group.group_id, slot))
                    if asked is not None and asked[0] == have + 1 and now - asked[1] < 2 * self._config.sync_interval:
                        continue  # asked another member for this page just now
                    self._asked[group.group_id, slot] = (have + 1, now)
                    self._send(peer, syncwire.encode_want(
                        syncwire.Want(group.group_id, syncwire.WANT_MESSAGES, slot, have + 1)))
        if behind:
            self._heard[group.group_id, peer] = summary
        else:
            self._heard.pop((group.group_id, peer), None)

    def _want_received(self, peer, want):
        group = self._groups.get(want.group_id)
        if group is None or peer not in group.log.members or self.me not in group.log.members:
            return
        if want.kind == syncwire.WANT_LOG:
            self._push_entries(group, group.log.entries[want.start:want.start + PAGE], [peer])
            return
        author = group.log.slots.get(want.slot)
        if author is not None:
            for data in self._store.page(group.group_id, author, want.start, PAGE):
                self._send(peer, syncwire.encode_message(data))

    def _entry_received(self, peer, record):
        entry = membership.decode_entry(record.data)
        group = self._groups.get(record.group_id)
        if group is not None:
            if entry.index == len(group.log):
                group.log.append(entry)
                self._store.add_entry(entry)
            return
        offered, _ = self._offered.get(record.group_id, (None, None))
        if offered is None:
            if entry.index != 0 or len(self._offered) >= MAX_OFFERED:
                return
            offered = MembershipLog(record.group_id)
            self._offered[record.group_id] = (offered, self._clock.seconds())
        if entry.index == len(offered):
            offered.append(entry)
        if self.me in offered.members:  # we were added: the group is ours now
            del self._offered[record.group_id]
            self._tell_summary(self._adopt(offered, self._unique_name(offered.title)), peer)

    def _message_received(self, peer, record):
        message = messages.decode(record.data)
        group = self._groups.get(message.group_id)
        if group is None or self.me not in group.log.members or message.epoch > len(group.log):
            return  # not ours, or written under log entries we lack: asked for again once we have them
        if not group.log.was_member(message.author, message.epoch):
            raise MessageError("author not a member")
        if message.seq > group.log.cuts.get(message.author, message.seq):
            raise MessageError("written after the author was removed")
        if message.time_ms > self._clock.seconds() * 1000 + MAX_CLOCK_AHEAD_MS:
            raise MessageError("stamped in the future")
        if self._store.sent_since(group.group_id, message.author, message.time_ms - 60_000) >= self._config.rate:
            raise MessageError("author over the rate limit")
        if self._store.add_message(message):
            self._on_message(group, message)

    # -- helpers ------------------------------------------------------------------------------

    def _adopt(self, log, name):
        self._store.add_group(log, name)
        group = self._groups[log.group_id] = Group(log.group_id, name, log)
        return group

    def _unique_name(self, title):
        name, n = title, 1
        while self._store.has_name(name):
            n += 1
            name = f"{title}-{n}"
        return name

    def _admin(self, group):
        member = group.log.members.get(self.me)
        if member is None or not member.admin:
            raise UserError(f"only an admin of {group.name} adds and removes members")

    def _sign(self, group, action, key, name="", cut=0):
        try:
            entry = group.log.sign(self._key, action, key, name, cut=cut)
        except LogError as e:
            raise UserError(str(e)) from None
        self._store.add_entry(entry)
        return entry

    def _remove(self, group, key):
        told = [k for k in group.log.members if k != self.me]  # the removed one learns it too
        entry = self._sign(group, REMOVE, key, cut=self._store.last_seq(group.group_id, key))
        self._push_entries(group, [entry], told)

    def _push_entries(self, group, entries, keys):
        records = [syncwire.encode_entry(group.group_id, entry.encode()) for entry in entries]
        for key in keys:
            for record in records:
                self._send(key, record)

    def _others(self, group):
        return [key for key in group.log.members if key != self.me and self._has_session(key)]

    def _summary(self, group, full):
        frontiers = self._store.frontiers(group.group_id)
        slots = {key: slot for slot, key in group.log.slots.items()}
        return syncwire.summary(group.group_id, len(group.log),
                                {slots[key]: seq for key, seq in frontiers.items() if key in slots}, full)

    def _within_budget(self, peer):
        bucket = self._buckets.get(peer)
        if bucket is None:
            bucket = self._buckets[peer] = TokenBucket(
                self._clock.seconds, self._config.records_per_second, self._config.record_burst)
        return bucket.allow()
