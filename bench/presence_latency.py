"""Live presence (issue 11): how fast contacts see each other come and go, and the
DHT traffic it costs, for 1, 20 and 100 contacts. Prints one JSON object.

Latency, with real processes on loopback and DEFAULT settings (no -r, no
kadchat.conf): a dedicated_server.py, N console clients (client_node.py -N, the
"contacts", each on a 127.x.y.2 address of its own as on separate machines) and
a "hub" client. Every time is read from the clients' own output lines (their
arrival, on a reader thread per process), from the moment the bench acted:
- `connected_after_mutual_add`: a hub with a new identity starts; it and every
  contact /add each other at the same moment; per contact, the later of the two
  sides showing the other connected. `add_trials` hubs per size (each trial's hub
  stays in the contacts' lists afterwards, offline).
- per trial (`trials`), with the last hub: `offline_after_quit` (the hub
  /quits; each contact shows it offline), each contact then writes to it;
  `connected_after_restart` (from spawning the hub's process again, interpreter
  start included: `restart_listening` says how much, until each contact shows it
  connected) and
  `queued_delivered` (until the hub shows each contact's message).
- once per size: `offline_after_sigkill` (the hub is SIGKILLed: no goodbye, only
  the keep-alives stop) and `connected_after_sigkill_restart`.
Samples are per contact and trial; p50/p95/max over all of them.

`--in-process` measures instead with every client a ChatService in this one
process (the figures of earlier runs; a crash there is a socket gone silent).

Baselines: `dht_lookup_ms` (in-process only) is one record looked up on the
swarm: the floor of any DHT-based notice. The old polling (commit 44536e1: every
contact's records looked up every 60 s, no sessions) is computed: a change shows
at the next look-up, uniform over 0-60 s (p50 30 s, p95 57 s), and a crash only
once its last record is older than the record TTL (600 s) plus that wait.

DHT traffic per client per hour, measured on the simulator (kademlia.simswarm,
virtual time, 200 nodes): a client's KRPC queries and bytes sent over one hour
after its start, with N contacts, for the old polling (PresenceTracker with a
fixed 60 s interval), the new one with every contact offline (the most
look-ups: 30 s backing off to 5 minutes), the new one with every contact
connected (no look-ups), and no contacts at all (publishing and the DHT's own
upkeep only).

    python3 bench/presence_latency.py [--contacts 1,20,100] [--trials 20,20,5] [--add-trials 20,1,1]
        [--in-process] [--no-crash] [--no-traffic] [--no-latency]
"""

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

from nacl.signing import SigningKey
from twisted.internet import defer, task

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from config import parse_client_args  # noqa: E402
from kadchat.identity import Identity, load_or_create  # noqa: E402
from kadchat.presence import ONLINE, Presence  # noqa: E402
from kadchat.publisher import PresencePublisher  # noqa: E402
from kadchat.seqcounter import SeqCounter  # noqa: E402
from kadchat.service import ChatService  # noqa: E402
from kadchat.tracker import PollSchedule, PresenceTracker  # noqa: E402
from kademlia.node import DHTNode  # noqa: E402
from kademlia.settings import DHTSettings  # noqa: E402
from kademlia.simswarm import SimSwarm  # noqa: E402
from tests.chat_loopback import percentile  # noqa: E402
from tests.client_helpers import (  # noqa: E402
    LISTENING, Processes, Spawned, client_argv, make_identity, presence, received, write_contacts)

OLD_POLL_INTERVAL = 60.0  # commit 44536e1: ON_DEMAND_REFRESH
RECORD_TTL = 600.0
QUIET = DHTSettings(maintenance_interval=10**7)
WAIT_LIMIT = 90.0  # seconds: a figure not seen by then counts as missing
QUIT_LIMIT = 30.0  # seconds from /quit to the process's exit (quits_not_ended_within_30_s)


def figures(samples):
    """p50/p95 (ms) of the samples (seconds), and how many there were."""
    if not samples:
        return {"n": 0}
    return {"n": len(samples), "p50_ms": round(percentile(samples, 0.5) * 1000, 1),
            "p95_ms": round(percentile(samples, 0.95) * 1000, 1), "max_ms": round(max(samples) * 1000, 1)}


# -- latency: ChatServices on real loopback sockets --------------------------------

class Watch:
    """A ChatListener that records when each presence and message was shown, and
    fires waiters (`until`) on them."""

    def __init__(self, clock):
        self._clock = clock
        self.shown = {}  # (contact name, presence) -> first clock time since reset()
        self.received = {}  # (contact name, text) -> clock time
        self._waiters = []  # (key, Deferred)

    def reset(self):
        self.shown.clear()

    def presence(self, name, presence):
        self._seen(self.shown, (name, str(presence)))

    def message(self, message):
        if not message.outgoing:
            self._seen(self.received, (message.contact, message.text))

    def message_state(self, message_id, state):
        pass

    def status(self, status):
        pass

    def _seen(self, table, key):
        table.setdefault(key, self._clock.seconds())
        for waiter in [w for w in self._waiters if w[0] == key]:
            self._waiters.remove(waiter)
            waiter[1].callback(None)

    def until(self, key, table):
        """Fires once `key` is in `table` (at once if it is)."""
        if key in table:
            return defer.succeed(None)
        d = defer.Deferred()
        self._waiters.append((key, d))
        return d


class Peer:
    """One ChatService and its data directory, startable again after a stop or a crash."""

    def __init__(self, reactor, data_dir, name, address, server):
        self.reactor, self.data_dir, self.name, self.address = reactor, data_dir, name, address
        self._argv = ["-N", "--data-dir", str(data_dir), "--interface", address,
                      "-I", server[0], "-P", str(server[1])]
        self.identity = None
        self.service = None
        self.watch = Watch(reactor)
        self.zombies = []  # crashed services and their ports, closed for good at the end

    def start(self):
        self.identity = self.identity or load_or_create(str(self.data_dir), self.name)
        self.service = ChatService(self.reactor, parse_client_args(self._argv), self.identity)
        self.service.subscribe(self.watch)
        self.service.start()

    def stop(self):
        service, self.service = self.service, None
        return service.stop()

    def crash(self):
        """Go silent as a killed process does: nothing sent, nothing read, no goodbye."""
        service, self.service = self.service, None
        port = service.node.protocol.transport  # the UDP port
        port.stopReading()
        service.node.protocol.transport = None  # KRPCProtocol sends nothing without one
        self.zombies.append((service, port))

    def joined(self):
        return self.service is not None and self.service._joiner.joined


def sleep(reactor, seconds):
    return task.deferLater(reactor, seconds, lambda: None)


@defer.inlineCallbacks
def wait_all(reactor, waits, limit=WAIT_LIMIT):
    """Wait for every Deferred in `waits`, at most `limit` seconds in all."""
    together = defer.DeferredList(list(waits), consumeErrors=True)
    together.addTimeout(limit, reactor)
    try:
        yield together
    except defer.TimeoutError:
        pass


@defer.inlineCallbacks
def until_joined(reactor, peers, limit=30.0):
    deadline = reactor.seconds() + limit
    while not all(p.joined() for p in peers) and reactor.seconds() < deadline:
        yield sleep(reactor, 0.05)


@defer.inlineCallbacks
def shown_at(reactor, peers, keys, began, table="shown"):
    """Wait (WAIT_LIMIT at most, all together) until every peer's Watch has each of `keys`
    in `table`; the seconds each took since `began`, for those that came."""
    pairs = [(getattr(p.watch, table), p.watch, key) for p in peers for key in keys]
    yield wait_all(reactor, [watch.until(key, seen) for seen, watch, key in pairs])
    return [seen[key] - began for seen, _, key in pairs if key in seen]


def reset(peers):
    for p in peers:
        p.watch.reset()


@defer.inlineCallbacks
def latency_in_process(reactor, server, count, trials, crash, tmp):
    names = [f"c{i}" for i in range(count)]
    hub = Peer(reactor, tmp / "hub", "hub", "127.0.0.2", server)
    # each contact on a /24 of its own: the introducer caps registrations per network at 128
    contacts = [Peer(reactor, tmp / n, n, f"127.{i // 250}.{i % 250 + 1}.2", server) for i, n in enumerate(names)]
    cards = {p.name: make_identity(p.data_dir, p.name) for p in [hub, *contacts]}
    write_contacts(hub.data_dir, {n: cards[n] for n in names})
    for p in contacts:
        write_contacts(p.data_dir, {"hub": cards["hub"]})
        p.start()
    yield until_joined(reactor, contacts)
    yield sleep(reactor, 1.0)  # their first records are out and their first look-ups (hub: none) done
    got = {key: [] for key in ("connected_at_hub", "connected_at_contacts", "offline_after_quit",
                               "connected_after_restart", "queued_delivered", "lookup_ms")}
    for trial in range(trials):
        reset([hub, *contacts])
        began = reactor.seconds()
        hub.start()
        got["connected_at_hub"] += yield shown_at(reactor, [hub], [(n, "connected") for n in names], began)
        got["connected_at_contacts"] += yield shown_at(reactor, contacts, [("hub", "connected")], began)

        stopped = reactor.seconds()
        stopping = hub.stop()
        got["offline_after_quit"] += yield shown_at(reactor, contacts, [("hub", "offline")], stopped)
        yield stopping  # gone for good: what the contacts write now must wait for its return
        reset(contacts)
        for p in contacts:
            p.service.send_message("hub", f"queued {trial}")
        yield sleep(reactor, 0.5)  # queued: sent into the old session or waiting for a new one

        again = reactor.seconds()
        hub.start()
        got["connected_after_restart"] += yield shown_at(reactor, contacts, [("hub", "connected")], again)
        got["queued_delivered"] += yield shown_at(reactor, [hub], [(n, f"queued {trial}") for n in names], again,
                                                  "received")
        looked = reactor.seconds()
        yield contacts[0].service.node.get(b"\x00" * 20)  # one DHT look-up on this swarm, for scale
        got["lookup_ms"].append(reactor.seconds() - looked)
        if trial < trials - 1:
            yield hub.stop()
    result = {key: figures(values) for key, values in got.items()}
    result["dht_lookup_ms"] = result.pop("lookup_ms")
    result["samples_expected_per_figure"] = count * trials
    if crash:
        reset(contacts)
        crashed = reactor.seconds()
        hub.crash()
        result["offline_after_crash"] = figures((yield shown_at(reactor, contacts, [("hub", "offline")], crashed)))
        reset(contacts)
        again = reactor.seconds()
        hub.start()
        result["connected_after_crash_restart"] = figures(
            (yield shown_at(reactor, contacts, [("hub", "connected")], again)))
    yield hub.stop()
    for p in contacts:
        yield p.stop()
    for p in [hub, *contacts]:
        for zombie, port in p.zombies:
            yield zombie.stop()
            yield port.stopListening()
    return result


# -- latency: real client processes ------------------------------------------------

class Timed(Spawned):
    """A client or server process that notes when each of its output lines arrived."""

    def __init__(self, argv, name):
        self.arrivals = []  # (time.monotonic(), line), in order
        super().__init__(argv, name=name)

    def _add(self, raw):
        self.arrivals.append((time.monotonic(), raw.decode("utf-8", "replace").rstrip("\r")))
        super()._add(raw)

    def first(self, pattern, since):
        """When the first line matching `pattern` at or after `since` arrived, else None."""
        return next((t for t, line in list(self.arrivals) if t >= since and re.search(pattern, line)), None)


def until_lines(wanted, since, limit=WAIT_LIMIT):
    """Wait (`limit` s at most) until each (process, pattern) of `wanted` has a line since
    `since`; returns the arrival time of each, None for those that did not come."""
    deadline = time.monotonic() + limit
    found = [None] * len(wanted)
    while True:
        found = [t if t is not None else process.first(pattern, since) for t, (process, pattern) in zip(found, wanted)]
        if all(t is not None for t in found) or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


class Client:
    """One client_node.py -N with its data directory, started again after each quit or kill."""

    def __init__(self, processes, data_dir, name, host, server):
        self.processes, self.data_dir, self.name, self.host, self.server = processes, data_dir, name, host, server
        self.card = make_identity(data_dir, name)
        write_contacts(data_dir, {})
        self.process = None

    def start(self):
        """Spawn the process; returns when it was spawned (time.monotonic())."""
        began = time.monotonic()
        self.process = Timed(client_argv(self.data_dir, bootstrap=self.server, interface=self.host), self.name)
        self.processes.started.append(self.process)
        return began

    def listening(self):
        self.process.expect(LISTENING, timeout=60)


def joined(clients, limit=60.0):
    """Wait until every client's DHT knows a peer (its /status says so)."""
    waiting, deadline = list(clients), time.monotonic() + limit
    while waiting and time.monotonic() < deadline:
        asked = time.monotonic()
        for client in waiting:
            client.process.send_line("/status")
        time.sleep(0.3)
        waiting = [c for c in waiting if c.process.first(r"^DHT peers: [1-9]", asked) is None]


def took(times, since):
    return [t - since for t in times if t is not None]


def latency_processes(count, trials, add_trials, crash, tmp):
    processes = Processes()
    got = {key: [] for key in ("connected_after_mutual_add", "offline_after_quit", "restart_listening",
                               "connected_after_restart", "queued_delivered")}
    result = {}
    try:
        _, server = processes.server()
        # each contact on a /24 of its own: the introducer caps registrations per network at 128
        contacts = [Client(processes, tmp / f"c{i}", f"c{i}", f"127.{i // 250}.{i % 250 + 1}.2", server)
                    for i in range(count)]
        for c in contacts:
            c.start()
        for c in contacts:
            c.listening()
        joined(contacts)
        for trial in range(add_trials):
            hub = Client(processes, tmp / f"hub{trial}", f"hub{trial}", "127.0.0.2", server)
            hub.start()
            hub.listening()
            joined([hub])
            added = time.monotonic()
            for c in contacts:
                c.process.send_line(f"/add {hub.card} {hub.name}")
                hub.process.send_line(f"/add {c.card} {c.name}")
            at_hub = until_lines([(hub.process, presence(c.name, "connected")) for c in contacts], added)
            at_contacts = until_lines([(c.process, presence(hub.name, "connected")) for c in contacts], added)
            got["connected_after_mutual_add"] += [max(a, b) - added for a, b in zip(at_hub, at_contacts)
                                                  if a is not None and b is not None]
            if trial < add_trials - 1:
                hub.process.quit()
        for trial in range(trials):
            quit_at = time.monotonic()
            hub.process.send_line("/quit")
            got["offline_after_quit"] += took(
                until_lines([(c.process, presence(hub.name, "offline")) for c in contacts], quit_at), quit_at)
            try:
                hub.process.wait(QUIT_LIMIT)  # its offline record goes out first
            except TimeoutError:  # a stop that does not end: counted, and killed
                result["quits_not_ended_within_30_s"] = result.get("quits_not_ended_within_30_s", 0) + 1
                hub.process.kill()
            for c in contacts:
                c.process.send_line(f"/msg {hub.name} queued {trial}")
            time.sleep(0.5)  # queued: waiting for a new session (and into a dead drop)
            again = hub.start()
            got["restart_listening"] += took(until_lines([(hub.process, LISTENING)], again), again)  # for scale
            got["connected_after_restart"] += took(
                until_lines([(c.process, presence(hub.name, "connected")) for c in contacts], again), again)
            got["queued_delivered"] += took(
                until_lines([(hub.process, received(c.name, f"queued {trial}")) for c in contacts], again), again)
        result.update({key: figures(values) for key, values in got.items()})
        result["samples_expected"] = {"connected_after_mutual_add": count * add_trials, "others": count * trials}
        if crash:
            killed = time.monotonic()
            hub.process.kill()
            result["offline_after_sigkill"] = figures(took(
                until_lines([(c.process, presence(hub.name, "offline")) for c in contacts], killed, 90.0), killed))
            again = hub.start()
            result["connected_after_sigkill_restart"] = figures(took(
                until_lines([(c.process, presence(hub.name, "connected")) for c in contacts], again), again))
        for c in [hub, *contacts]:
            c.process.send_line("/quit")
        for c in [hub, *contacts]:
            c.process.wait(30)
    finally:
        processes.stop_all()
    return result


# -- DHT traffic: the simulator, one virtual hour ---------------------------------

class CountingTransport:
    """Stands in for a node's transport: counts the KRPC it sends (queries, bytes)."""

    def __init__(self, inner):
        self._inner = inner
        self.queries = self.bytes = 0

    def write(self, data, address):
        if data[:1] == b"d":
            self.bytes += len(data)
            self.queries += b"1:y1:q" in data  # keys are sorted: a query's y comes last
        return self._inner.write(data, address)

    def __getattr__(self, name):
        return getattr(self._inner, name)


def traffic(count, tmp, nodes=200, seconds=3600.0, seed=7):
    """KRPC queries and bytes one client sends in `seconds`, per polling mode."""
    modes = {
        "old_every_60s": dict(schedule=PollSchedule(fixed=OLD_POLL_INTERVAL), connected=False),
        "new_all_offline": dict(schedule=PollSchedule(), connected=False),
        "new_all_connected": dict(schedule=PollSchedule(), connected=True),
    }
    result = {}
    baseline = None
    for mode, options in [("no_contacts", None), *modes.items()]:
        # The other nodes skip their own upkeep (it would cost most of the run and is not the
        # client's traffic); the client keeps the default settings, upkeep included.
        swarm = SimSwarm.build(nodes, seed=seed, factory=lambda clock, node_id, settings: DHTNode(
            clock, node_id=node_id, settings=QUIET))
        [node] = swarm.add(1)
        swarm.seed_routing_tables()
        me = Identity(SigningKey(bytes([9]) * 32), "hub")
        seq = SeqCounter(str(tmp / f"seq-{mode}-{count}"), swarm.clock.seconds, bytes(me.signing_key))
        publisher = PresencePublisher(swarm.clock, node, me, lambda: Presence(ONLINE, addrs=[node.address]), seq)
        keys = [] if options is None else [(f"c{i}", SigningKey((i + 1).to_bytes(32, "big")).verify_key.encode())
                                           for i in range(count)]
        tracker = PresenceTracker(swarm.clock, node, keys, schedule=options and options["schedule"])
        sent = node.protocol.transport = CountingTransport(node.protocol.transport)
        first = publisher.start()
        if options is not None and options["connected"]:
            for name, _ in keys:  # sessions came up at once: the hellos speak for them
                tracker.set_connected(name, True)
        tracker.start(after=first)
        swarm.advance(seconds, step=60.0)  # the SimClock runs every call at its own time anyway
        tracker.stop()
        publisher.stop()
        swarm.stop()
        per_hour = {k: round(getattr(sent, k) * 3600.0 / seconds) for k in ("queries", "bytes")}
        if options is None:
            baseline = per_hour
        else:
            per_hour["presence_lookups_only"] = {k: per_hour[k] - baseline[k] for k in baseline}
        result[mode] = per_hour
    return result


# -- main ------------------------------------------------------------------------

@defer.inlineCallbacks
def main(reactor, *argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", default="1,20,100", help="contact counts, comma-separated")
    parser.add_argument("--trials", default="20,20,5", help="quit/restart trials per contact count")
    parser.add_argument("--add-trials", default="20,1,1", help="mutual-add trials per contact count (processes)")
    parser.add_argument("--in-process", action="store_true", help="every client a ChatService in this process")
    parser.add_argument("--no-crash", action="store_true", help="skip the crash figure (about 50 s per size)")
    parser.add_argument("--no-traffic", action="store_true", help="skip the simulated DHT traffic")
    parser.add_argument("--no-latency", action="store_true", help="skip the loopback latencies")
    args = parser.parse_args(argv)
    counts = [int(c) for c in args.contacts.split(",")]

    def per_count(text):
        values = [int(t) for t in text.split(",")]
        return values + values[-1:] * len(counts)

    report = {"benchmark": "presence_latency", "settings": "defaults (no -r)",
              "clients": "ChatServices in one process" if args.in_process else "client_node.py -N processes",
              "old_polling_computed": {
                  "change_shown_after_s": {"p50": OLD_POLL_INTERVAL * 0.5, "p95": OLD_POLL_INTERVAL * 0.95},
                  "crash_shown_after_s": {"min": RECORD_TTL, "max": RECORD_TTL + OLD_POLL_INTERVAL}},
              "by_contacts": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        processes = Processes()
        try:
            if args.in_process and not args.no_latency:
                _, server = processes.server()
            for count, trials, add_trials in zip(counts, per_count(args.trials), per_count(args.add_trials)):
                started = time.monotonic()
                entry = report["by_contacts"][str(count)] = {}
                if args.no_latency:
                    pass
                elif args.in_process:
                    entry["latency"] = yield latency_in_process(reactor, server, count, trials, not args.no_crash,
                                                                tmp / f"latency-{count}")
                else:
                    entry["latency"] = latency_processes(count, trials, add_trials, not args.no_crash,
                                                         tmp / f"processes-{count}")
                entry["trials"] = trials
                if not args.no_traffic:
                    entry["dht_traffic_per_client_per_hour"] = traffic(count, tmp)
                entry["wall_seconds"] = round(time.monotonic() - started, 1)
                print(json.dumps({str(count): entry}), file=sys.stderr, flush=True)  # progress
        finally:
            processes.stop_all()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    task.react(main, sys.argv[1:])
