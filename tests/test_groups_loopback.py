"""Group records over real sessions: two ChatEndpoints on real UDP sockets on 127.0.0.1,
each with a Groups engine on a real groups.db. A contact with a session, but a forger:
what it sends that does not verify, or whose author is no member, is dropped."""

import tempfile
from pathlib import Path

from nacl.signing import SigningKey
from twisted.internet import defer, reactor
from twisted.trial import unittest

from kadchat.groups import messages, syncwire
from kadchat.groups.engine import Groups
from kadchat.groups.messages import GroupMessage
from kadchat.groups.store import GroupStore
from tests import chat_loopback
from tests.test_messaging_loopback import _Polling


class GroupsOverSessionsTests(_Polling, unittest.TestCase):
    timeout = 20

    def setUp(self):
        self.dir = Path(tempfile.mkdtemp())
        self.keys = {name: SigningKey.generate() for name in ("alice", "bob")}
        public = {name: bytes(key.verify_key) for name, key in self.keys.items()}
        self.sides, self.engines, self.shown = {}, {}, {"alice": [], "bob": []}
        for name, other in (("alice", "bob"), ("bob", "alice")):
            side = self.sides[name] = chat_loopback.listen(reactor, self.keys[name], public[other])
            self.capture(side.port)
            engine = self.engines[name] = Groups(
                reactor, self.keys[name], GroupStore(self.dir / f"{name}.db"), side.endpoint.send_record,
                side.endpoint.has_session, lambda group, m, name=name: self.shown[name].append(m.text))
            for record_type in syncwire.RECORD_TYPES:
                side.endpoint.record_handlers[record_type] = engine.record_received
            engine.start()
        self.public = public

    def capture(self, port):
        """Keep every datagram written to the UDP socket."""
        write = port.write
        self.wire = getattr(self, "wire", [])

        def writing(data, addr=None):
            self.wire.append(bytes(data))
            return write(data, addr)
        port.write = writing

    @defer.inlineCallbacks
    def tearDown(self):
        for name in self.sides:
            yield self.engines[name].stop()
            self.engines[name].close()
            yield self.sides[name].close()

    @defer.inlineCallbacks
    def connect(self):
        alice = self.sides["alice"].endpoint
        alice.peer_available(self.public["bob"], [self.sides["bob"].addr])
        yield self.wait_for(lambda: alice.has_session(self.public["bob"]))
        yield self.wait_for(lambda: self.sides["bob"].endpoint.has_session(self.public["alice"]))

    @defer.inlineCallbacks
    def test_a_group_made_by_one_contact_reaches_the_other_and_forgeries_are_dropped(self):
        yield self.connect()
        bob, alice = self.engines["bob"], self.engines["alice"]
        group = bob.create("team")
        bob.add(group, self.public["alice"], "alice")
        yield self.wait_for(lambda: alice.groups())
        mine = alice.groups()[0]
        alice.send(mine, "real one")
        yield self.wait_for(lambda: self.shown["bob"] == ["real one"])

        send = self.sides["alice"].endpoint.send_record
        real = messages.sign(GroupMessage(group.group_id, self.public["alice"], 2, 5, int(reactor.seconds() * 1000),
                                          len(mine.log), (), "second"), self.keys["alice"])
        forged = GroupMessage(**{**real.__dict__, "text": "changed on the way"})
        stranger = SigningKey.generate()
        outsider = messages.sign(GroupMessage(group.group_id, bytes(stranger.verify_key), 1, 5, real.time_ms,
                                              len(mine.log), (), "not a member"), stranger)
        for message in (forged, outsider, real):  # `real` last: once it is in, the others were handled
            send(self.public["bob"], syncwire.encode_message(message.encode()))
        yield self.wait_for(lambda: self.shown["bob"] == ["real one", "second"])
        self.assertEqual([m.text for m in bob.history(group)], ["real one", "second"])

    @defer.inlineCallbacks
    def test_nothing_of_a_group_is_on_the_wire_in_the_clear(self):
        yield self.connect()
        bob, alice = self.engines["bob"], self.engines["alice"]
        group = bob.create("secretclub")
        bob.add(group, self.public["alice"], "alice")
        yield self.wait_for(lambda: alice.groups())
        alice.send(alice.groups()[0], "the password is swordfish")
        yield self.wait_for(lambda: self.shown["bob"] == ["the password is swordfish"])
        sent = b"".join(self.wire)
        for secret in (b"swordfish", b"secretclub", group.group_id, b"alice"):
            self.assertNotIn(secret, sent)
        self.assertGreater(len(self.wire), 4)
