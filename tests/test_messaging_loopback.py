"""kadchat.messaging over real UDP on 127.0.0.1, and with the receiver a real process killed mid-stream."""

import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path

from twisted.internet import defer, protocol, reactor
from twisted.trial import unittest

from kadchat.history import History
from tests import chat_loopback
from tests.test_messaging import A_KEY, ALICE, B_KEY, BOB, Recorder


class _Polling:
    @defer.inlineCallbacks
    def wait_for(self, condition, timeout=10.0):
        deadline = reactor.seconds() + timeout
        while not condition():
            if reactor.seconds() > deadline:
                self.fail("timed out")
            d = defer.Deferred()
            reactor.callLater(0.01, d.callback, None)
            yield d


class RealLoopbackUDPTests(_Polling, unittest.TestCase):
    """Two endpoints on real UDP sockets on 127.0.0.1."""

    timeout = 20

    def setUp(self):
        self.sides, self.listening = {}, []
        for name, identity, peer in (("alice", ALICE, B_KEY), ("bob", BOB, A_KEY)):
            side, recorder = chat_loopback.listen(reactor, identity, peer), Recorder()
            side.endpoint.subscribe(recorder)
            self.listening.append(side)
            self.sides[name] = (side.endpoint, recorder, side.port, side.history)

    @defer.inlineCallbacks
    def tearDown(self):
        for side in self.listening:
            yield side.close()

    def addr(self, name):
        return ("127.0.0.1", self.sides[name][2].getHost().port)

    @defer.inlineCallbacks
    def test_two_peers_exchange_messages_with_receipts_over_real_udp(self):
        alice, alice_seen, _, _ = self.sides["alice"]
        bob, bob_seen, _, _ = self.sides["bob"]
        sent = [alice.send_message(B_KEY, [self.addr("bob")], f"hi {i}") for i in range(20)]
        reply = bob.send_message(A_KEY, [self.addr("alice")], "hello alice")
        yield self.wait_for(lambda: all(alice_seen.states[i][-1] == "delivered" for i in sent)
                            and bob_seen.states[reply][-1] == "delivered")
        self.assertEqual([m.id for _, m in bob_seen.received], sent)
        self.assertEqual(alice_seen.texts(), ["hello alice"])
        self.assertEqual(alice_seen.states[sent[0]], ["sending", "sent", "delivered"])

    @defer.inlineCallbacks
    def test_first_answering_candidate_address_wins_over_real_udp(self):
        alice, alice_seen, _, _ = self.sides["alice"]
        silent = reactor.listenUDP(0, protocol.DatagramProtocol(), interface="127.0.0.1")
        self.addCleanup(silent.stopListening)
        dead = ("127.0.0.1", silent.getHost().port)
        message_id = alice.send_message(B_KEY, [dead, self.addr("bob")], "which way?")
        yield self.wait_for(lambda: alice_seen.states[message_id][-1] == "delivered")
        self.assertEqual(alice.sessions._peers[B_KEY].current.addr, self.addr("bob"))


class _ReceiverProcess(protocol.ProcessProtocol):
    """tests/chat_peer_process.py as a child: the ids it shows, and when it is ready / dead."""

    script = str(Path(__file__).with_name("chat_peer_process.py"))

    def __init__(self, port, history_file):
        self.shown, self.errors, self._buffer = [], b"", b""
        self.ready, self.ended, self.alive = defer.Deferred(), defer.Deferred(), True
        args = [sys.executable, self.script, str(port), str(history_file), (b"b" * 32).hex(), A_KEY.hex()]
        self.process = reactor.spawnProcess(self, sys.executable, args, env=os.environ)

    def outReceived(self, data):
        *lines, self._buffer = (self._buffer + data).split(b"\n")
        for line in lines:
            if line == b"ready":
                self.ready.callback(None)
            else:
                self.shown.append(line.decode())

    def errReceived(self, data):
        self.errors += data

    def processEnded(self, reason):
        self.alive = False
        self.ended.callback(None)

    def kill(self):
        if self.alive:
            self.process.signalProcess("KILL")
        return self.ended


class ReceiverKilledWithSIGKILLTests(_Polling, unittest.TestCase):
    """The receiver is a real process, killed with SIGKILL mid-stream and restarted."""

    timeout = 60

    @defer.inlineCallbacks
    def test_nothing_acknowledged_is_lost_and_nothing_is_shown_twice(self):
        tmp = Path(tempfile.mkdtemp())  # (trial's mktemp would litter the working directory)
        self.addCleanup(shutil.rmtree, tmp, ignore_errors=True)
        history_file = tmp / "bob.sqlite3"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        first = _ReceiverProcess(port, history_file)
        self.addCleanup(first.kill)
        yield first.ready

        delivered = []

        class KillAfterThirty(Recorder):
            def message_state(self, message_id, state):
                super().message_state(message_id, state)
                if state == "delivered":
                    delivered.append(message_id)
                    if len(delivered) == 30:
                        first.kill()

        alice, recorder = chat_loopback.listen(reactor, ALICE, B_KEY), KillAfterThirty()
        alice.endpoint.subscribe(recorder)
        self.addCleanup(alice.close)
        ids = [alice.endpoint.send_message(B_KEY, [("127.0.0.1", port)], f"line {i}") for i in range(300)]
        yield first.ended
        acknowledged = set(delivered)
        self.assertLess(len(acknowledged), 300, "the kill came too late to test anything")

        survivor = History(history_file)  # what the killed process left on disk
        stored = {m.id for m in survivor.conversation(A_KEY, limit=1000)}
        stored |= {m.id for m in survivor.incoming_state(A_KEY)[1]}
        survivor.close()
        self.assertTrue(acknowledged <= stored)

        second = _ReceiverProcess(port, history_file)
        self.addCleanup(second.kill)
        yield second.ready
        yield self.wait_for(lambda: all(recorder.states[i][-1] == "delivered" for i in ids), timeout=30)
        yield second.kill()
        shown = [bytes.fromhex(line) for line in first.shown + second.shown]
        self.assertEqual(len(shown), len(set(shown)), "a message was shown twice")
        self.assertEqual(shown, [i for i in ids if i in set(shown)], "shown out of order")
        # A message stored just before the kill but not yet displayed is displayed
        # from history after the restart, like everything else already stored.
        self.assertTrue(set(ids) - set(shown) <= stored)
        final = History(history_file)
        self.addCleanup(final.close)
        self.assertEqual([m.id for m in final.conversation(A_KEY, limit=1000)], ids)
