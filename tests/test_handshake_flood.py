"""A contact's messages keep flowing while a stranger floods handshake initiations.

Real UDP on 127.0.0.1: Alice and Bob (two ChatEndpoints, one process) talk
while tests/chat_flooder.py (another process) sends Bob initiations as fast
as it can, from spoofed 127.x.y.z sources when run as root, on a CPU of its
own (an attacker elsewhere does not take its victim's CPU). The figures go in
the assertion message; bench/handshake_flood.py prints them in full.
"""

from twisted.internet import defer, reactor
from twisted.trial import unittest

import os

from tests.chat_flooder import Flooder, pin_to_other_cpus
from tests.chat_loopback import Contacts, latencies, percentile

FLOOD_SECONDS = 4.0
P95_LIMIT = 0.200


class HandshakeFloodTests(unittest.TestCase):
    timeout = 60

    @defer.inlineCallbacks
    def test_contact_latency_stays_under_200_ms_p95_during_a_spoofed_initiation_flood(self):
        cpus = pin_to_other_cpus(0)  # (the flooder keeps to the last CPU)
        if cpus is not None:
            self.addCleanup(os.sched_setaffinity, 0, cpus)
        contacts = Contacts.open(reactor)
        self.addCleanup(contacts.close)
        yield latencies(reactor, contacts, duration=0.2)  # the handshake, before measuring
        baseline = yield latencies(reactor, contacts, duration=1.0)

        flooder = Flooder(reactor, contacts.bob.port.getHost().port, contacts.bob_key, FLOOD_SECONDS)
        self.addCleanup(flooder.kill)
        yield flooder.started
        under_flood = yield latencies(reactor, contacts, duration=flooder.result)
        flood = yield flooder.result

        p95, quiet_p95 = percentile(under_flood, 0.95), percentile(baseline, 0.95)
        figures = (f"p95 {p95 * 1e3:.0f} ms over {len(under_flood)} messages under {flood['rate']} "
                   f"initiations/s (spoofed: {flood['spoofed']}); without flood p95 {quiet_p95 * 1e3:.1f} ms")
        self.assertGreater(flood["rate"], 10_000, f"the flood was too weak to test anything: {figures}")
        self.assertLess(p95, P95_LIMIT, figures)
