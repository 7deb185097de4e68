"""Where each contact was last reachable, kept on disk so that a restart can reach it at once.

A restarted client need not wait for its DHT look-ups (a put, then one get per
contact and epoch, whose answers DHT nodes may hold back from an address they
have not met yet) to say it is back: it offers each contact's last known
paths to the session layer as soon as it has joined, and the contact's answer
brings both sides' hellos. What is kept per contact is its newest record's
route (addresses, NAT class, introducers, publication time) with the address
its last session used in front. A wrong guess costs a few handshake
datagrams; the look-ups still run and correct it.

The file (JSON, mode 600) is `{identity key hex: {"addrs": [[ip, port], ...],
"nat": ..., "introducers": [[ip, port], ...], "ts": ...}}`; a damaged one is
read as empty. Changes are written `delay` seconds after the first one (at
start a hundred contacts' records come at once) and at stop; after a crash
the file is at most that much behind.
"""

import json

from kadchat.files import atomic_write
from kadchat.presence import MAX_ADDRS, ONLINE, Presence
from kademlia.timers import cancel

WHEREABOUTS_FILE = "whereabouts.json"


class Whereabouts:
    def __init__(self, clock, path, delay=5.0):
        self._clock = clock
        self._path = path
        self._delay = delay
        self._known = {}  # identity key -> Presence (status online: a guess to reach it by)
        self._write = None  # the pending write, if a change is not on disk yet

    def load(self):
        try:
            with open(self._path, encoding="utf-8") as f:
                raw = json.load(f)
            self._known = {bytes.fromhex(key): _presence(entry) for key, entry in raw.items()}
        except (OSError, ValueError, TypeError, AttributeError, KeyError):
            self._known = {}  # missing or damaged: the DHT look-ups will do

    def get(self, key):
        """Where `key` was last reachable, None if nowhere we remember."""
        return self._known.get(key)

    def forget(self, key):
        """No longer a contact: nothing of where it was stays on disk either."""
        if self._known.pop(key, None) is not None and self._write is None:
            self._write = self._clock.callLater(self._delay, self._flush)

    def known(self, keys):
        """(key, Presence) for each of `keys` we know a route of."""
        return [(key, self._known[key]) for key in keys if key in self._known]

    def record(self, key, presence):
        """The contact's newest record: where to look for it next time."""
        old = self._known.get(key)
        if old is not None and old.ts > presence.ts:
            return
        self._save(key, Presence(ONLINE, presence.addrs, presence.nat, presence.introducers, presence.ts))

    def session_at(self, key, address):
        """A session with the contact runs at `address` (ip, port): the first path to try."""
        old = self._known.get(key, Presence(ONLINE))
        addrs = (tuple(address), *[a for a in old.addrs if a != tuple(address)])[:MAX_ADDRS]
        self._save(key, Presence(ONLINE, addrs, old.nat, old.introducers, old.ts))

    def stop(self):
        if self._write is not None:
            self._write = cancel(self._write)
            self._flush()

    def _save(self, key, presence):
        if self._known.get(key) == presence:
            return
        self._known[key] = presence
        if self._write is None:
            self._write = self._clock.callLater(self._delay, self._flush)

    def _flush(self):
        self._write = None
        data = {k.hex(): {"addrs": p.addrs, "nat": p.nat, "introducers": p.introducers, "ts": p.ts}
                for k, p in self._known.items()}
        atomic_write(self._path, json.dumps(data).encode())


def _presence(entry):
    return Presence(ONLINE, [(str(h), int(p)) for h, p in entry["addrs"]], str(entry["nat"]),
                    [(str(h), int(p)) for h, p in entry["introducers"]], float(entry["ts"]))
