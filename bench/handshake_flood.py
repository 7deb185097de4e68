"""A contact's message latency while a stranger floods handshake initiations.

Alice and Bob (two ChatEndpoints on real UDP sockets on 127.0.0.1, this
process) exchange a message every 20 ms: first with no flood (the baseline,
same run), then while tests/chat_flooder.py (another process, on a CPU of its
own) sends Bob stranger initiations as fast as it can, from spoofed
127.x.y.z sources when run as root. Then, in this process, the CPU one
stranger initiation costs Bob: answered as before cookies (X25519 + AEAD),
answered with a cookie reply, or dropped over budget. Prints one JSON object:
{what: {"figure": ..., "baseline": ...}}.

    python3 bench/handshake_flood.py [--seconds 4]
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

from nacl.signing import SigningKey
from twisted.internet import defer, task
from twisted.internet.task import Clock

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kadchat.cookies import HandshakeBudget  # noqa: E402
from kadchat.sessions import SessionConfig, SessionManager  # noqa: E402
from tests.chat_flooder import Flooder, pin_to_other_cpus, stranger_initiations  # noqa: E402
from tests.chat_loopback import Contacts, latencies, percentile  # noqa: E402

NO_COOKIES = HandshakeBudget(rate=1e12, burst=10**12)  # every initiation gets the full handshake
ALL_COOKIES = HandshakeBudget(rate=1e-9, burst=0, cookie_rate=1e12)
ALL_DROPPED = HandshakeBudget(rate=1e-9, burst=0, cookie_rate=1e-9)


def cpu_per_initiation(budget, count):
    """Microseconds of CPU per stranger initiation reaching a SessionManager under `budget`."""
    callee = SigningKey.generate()
    pool = stranger_initiations(bytes(callee.verify_key), 16)
    manager = SessionManager(Clock(), lambda data, addr: None, callee, lambda key: False,
                             None, None, SessionConfig(budget=budget))
    addresses = [("127.1.%d.%d" % (i // 250, i % 250 + 1), 4000 + i) for i in range(1000)]
    started = time.process_time()
    for i in range(count):
        manager.datagram_received(pool[i % len(pool)], addresses[i % len(addresses)])
    return (time.process_time() - started) / count * 1e6


@defer.inlineCallbacks
def rows(reactor, seconds=4.0):
    """[(what, figure, baseline)]: latency under the flood vs none, the flood, CPU per initiation."""
    cpus = pin_to_other_cpus(0)
    contacts = Contacts.open(reactor)
    try:
        yield latencies(reactor, contacts, duration=0.2)  # the handshake, before measuring
        quiet = yield latencies(reactor, contacts, duration=seconds)
        flooder = Flooder(reactor, contacts.bob.port.getHost().port, contacts.bob_key, seconds)
        yield flooder.started
        loud = yield latencies(reactor, contacts, duration=flooder.result)
        flood = yield flooder.result
        stats = contacts.bob.endpoint.sessions.handshake_stats
    finally:
        yield contacts.close()
        if cpus is not None:
            os.sched_setaffinity(0, cpus)
    full = cpu_per_initiation(NO_COOKIES, 2_000)
    ms = 1e3
    return [
        ("contact latency p50 ms (flood / none)", percentile(loud, 0.5) * ms, percentile(quiet, 0.5) * ms),
        ("contact latency p95 ms (flood / none)", percentile(loud, 0.95) * ms, percentile(quiet, 0.95) * ms),
        ("contact latency max ms (flood / none)", max(loud) * ms, max(quiet) * ms),
        ("flood initiations/s sent" + (" (spoofed)" if flood["spoofed"] else ""), flood["rate"], 0),
        ("flood initiations/s read by the callee",
         (stats.over_budget + stats.cookies_sent + stats.strangers) / flood["seconds"], 0),
        ("cookie replies/s sent", stats.cookies_sent / flood["seconds"], 0),
        ("stranger handshakes/s (X25519 each)", stats.strangers / flood["seconds"], 0),
        ("CPU us per stranger initiation: cookie reply / full handshake",
         cpu_per_initiation(ALL_COOKIES, 20_000), full),
        ("CPU us per stranger initiation: over budget / full handshake",
         cpu_per_initiation(ALL_DROPPED, 100_000), full),
    ]


@defer.inlineCallbacks
def main(reactor, *argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="of quiet, then of flood")
    args = parser.parse_args(argv)
    table = yield rows(reactor, args.seconds)
    print(json.dumps({what: {"figure": round(figure, 2), "baseline": round(baseline, 2)}
                      for what, figure, baseline in table}, indent=2))


if __name__ == "__main__":
    task.react(main, sys.argv[1:])
