"""Group sync under churn: how many members get each message, how soon after they return, at what cost.

N members of one group (real Groups engines, real groups.db files in a temporary
directory) on a virtual clock; every pair of members that are online at once has a
session (records delivered within the same second; DHT lookups and NAT traversal,
which decide when sessions come up, are not simulated here). Members go offline and
come back at random (exponential on/off times), online members write at random.
At the end everyone comes back for `--settle` seconds.

Printed, for kadchat's sync and for a baseline in the same run on the same seed (the
same engines with sync off: a message goes only to the members online when it is
written, as in Tox's groups):
  reached_within_refresh  share of (message, member) pairs received within `quiet_interval`
                          (10 s) of the member being online with the message written
  reached_at_end          share of pairs held by the end
  bytes_per_message_member  group record bytes sent (with the 29-byte TRANSPORT overhead)
                          per message per member

    python3 bench/groups.py [--members 50] [--duration 600] [--seed 1]
"""

import argparse
import json
import os
import random
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

from nacl.signing import SigningKey
from twisted.internet.task import Clock

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kadchat import wire  # noqa: E402
from kadchat.groups.engine import Groups, GroupsConfig  # noqa: E402
from kadchat.groups.store import GroupStore  # noqa: E402

REFRESH = GroupsConfig().quiet_interval


def run(members, duration, settle, seed, mean_online, mean_offline, writes_per_second, sync, workdir):
    rng = random.Random(seed)
    clock = Clock()
    keys = [SigningKey.generate() for _ in range(members)]
    public = [bytes(k.verify_key) for k in keys]
    index = {key: i for i, key in enumerate(public)}
    online = [True] * members
    queue = deque()
    sent_bytes = [0]
    received = {}  # (message id, member) -> when
    written = {}  # message id -> (author, when)
    online_since = [0.0] * members
    config = GroupsConfig() if sync else GroupsConfig(sync_interval=1e9, quiet_interval=1e9)

    def sender(me):
        def send(key, payload):
            if not (online[me] and online[index[key]]):
                return False
            sent_bytes[0] += len(payload) + wire.TRANSPORT_OVERHEAD
            queue.append((me, index[key], payload))
            return True
        return send

    def shown(me):
        return lambda group, message: received.setdefault((message.id, me), clock.seconds())

    engines = [Groups(clock, keys[i], GroupStore(Path(workdir) / f"{'s' if sync else 'b'}{i}.db"), sender(i),
                      lambda key, i=i: online[i] and online[index[key]], shown(i), config)
               for i in range(members)]
    for engine in engines:
        engine.start()
    group = engines[0].create("bench")
    for i in range(1, members):
        engines[0].add(group, public[i], f"m{i}")
        deliver(queue, engines, public, online)
    groups = [engine.named("bench") if engine.groups() else None for engine in engines]
    assert all(groups), "every member has the group"
    sent_bytes[0] = 0  # what the messages cost, not the group's making

    def come_online(i):
        online[i] = True
        online_since[i] = clock.seconds()
        if sync:
            for j in range(members):
                if j != i and online[j]:
                    engines[i].session_ready(public[j])
                    engines[j].session_ready(public[i])

    next_toggle = [rng.expovariate(1 / mean_online) for _ in range(members)]
    # (message, member) pairs waiting to count: the member's first online second with the message out
    reachable_at = {}
    while clock.seconds() < duration + settle:
        now = clock.seconds()
        for i in range(members):
            if now >= next_toggle[i] and now < duration:
                if online[i]:
                    online[i] = False
                    next_toggle[i] = now + rng.expovariate(1 / mean_offline)
                else:
                    come_online(i)
                    next_toggle[i] = now + rng.expovariate(1 / mean_online)
            if now >= duration and not online[i]:
                come_online(i)  # the end: everyone back
        if now < duration:
            for _ in range(_poisson(rng, writes_per_second)):
                author = rng.choice([i for i in range(members) if online[i]] or [0])
                if online[author]:
                    try:
                        message = engines[author].send(groups[author], f"m at {now:.0f} by {author}")
                    except Exception:  # the rate limit
                        continue
                    written[message.id] = (author, now)
        for mid, (author, when) in written.items():
            for i in range(members):
                if i != author and online[i] and (mid, i) not in reachable_at:
                    reachable_at[mid, i] = now
        deliver(queue, engines, public, online)
        clock.advance(1.0)
    pairs = [(mid, i) for mid, (author, _) in written.items() for i in range(members) if i != author]
    within = sum(1 for p in pairs if p in received and received[p] - reachable_at.get(p, received[p]) <= REFRESH)
    for engine in engines:
        engine.close()
    return {
        "messages": len(written),
        "reached_within_refresh": round(within / len(pairs), 5) if pairs else None,
        "reached_at_end": round(sum(1 for p in pairs if p in received) / len(pairs), 5) if pairs else None,
        "bytes_per_message_member": round(sent_bytes[0] / len(pairs), 1) if pairs else None,
    }


def deliver(queue, engines, public, online):
    while queue:
        sender, receiver, payload = queue.popleft()
        if online[receiver] and online[sender]:
            engines[receiver].record_received(public[sender], payload)


def _poisson(rng, mean):
    count, t = 0, rng.expovariate(1.0)
    while t < mean:
        count += 1
        t += rng.expovariate(1.0)
    return count


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=50)
    parser.add_argument("--duration", type=float, default=600.0, help="virtual seconds of churn")
    parser.add_argument("--settle", type=float, default=60.0, help="virtual seconds with everyone back")
    parser.add_argument("--mean-online", type=float, default=120.0)
    parser.add_argument("--mean-offline", type=float, default=60.0)
    parser.add_argument("--writes-per-second", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    results = {}
    for name, sync in (("kadchat_sync", True), ("baseline_push_only", False)):
        with tempfile.TemporaryDirectory(dir=base) as workdir:
            started = time.perf_counter()
            results[name] = run(args.members, args.duration, args.settle, args.seed, args.mean_online,
                                args.mean_offline, args.writes_per_second, sync, workdir)
            results[name]["wall_seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps({"members": args.members, "duration": args.duration, "seed": args.seed,
                      "load": os.getloadavg()[0], **results}, indent=1))


if __name__ == "__main__":
    main()
