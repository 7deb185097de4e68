"""Contact scenarios: ChatServices on real loopback sockets, driven through the ChatBackend calls.

    python3 tests/contact_scenarios.py SCENARIO DATA_DIR SERVER_HOST SERVER_PORT

Each person is a whole ChatService on an address of its own (127.0.0.N, as on
separate machines), joined through a dedicated server the test runs as a
process. A scenario prints `fact NAME JSON` for each thing it observed, then
`done`; tests/test_contact_privacy.py judges them. "Stranger" reads go through
a person's own DHT node, with exactly what that person holds: the card, and
the presence secret it was given (or none). The data directories are the
ground truth for the secrets a person holds.
"""

import json
import socket
import sys
from pathlib import Path

from twisted.internet import defer, task

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from config import parse_client_args  # noqa: E402
from kadchat import wire  # noqa: E402
from kadchat.blinding import epoch_of  # noqa: E402
from kadchat.cards import encode_card  # noqa: E402
from kadchat.identity import load_or_create  # noqa: E402
from kadchat.presence import PresenceError, open_record, record_target  # noqa: E402
from kadchat.service import ChatService  # noqa: E402
from tests.spoofing import RawSender  # noqa: E402 (raw sockets: root only, the test checks)

WAIT = 20.0  # seconds any one thing may take before the scenario says it did not happen


class Person:
    def __init__(self, reactor, root, name, host, server, port=0):
        self.reactor, self.name, self.host = reactor, name, host
        self.data_dir = root / name
        self.identity = load_or_create(str(self.data_dir), name)
        self.card = self.identity.card
        self.key = self.identity.public_key
        self._argv = ["-N", "--data-dir", str(self.data_dir), "--interface", host, "-p", str(port),
                      "-I", server[0], "-P", str(server[1])]
        self.requests_heard = []
        self.service = self._new_service()

    def _new_service(self):
        service = ChatService(self.reactor, parse_client_args(self._argv), self.identity)
        service.subscribe(self)
        return service

    def restart(self):
        """A new run of the client on the same data directory."""
        self.service = self._new_service()
        self.service.start()

    # the ChatListener calls this scenario listens to
    def contact_request(self, request):
        self.requests_heard.append(request)

    def start(self):
        self.service.start()

    def crash(self):
        """Go silent at once, as a killed process: no goodbye, the port closed (to be reused)."""
        service = self.service
        for part in (service.tracker, service.publisher, service.mailbox, service.reachability):
            part.stop()
        service.presences.liveness.stop()
        service.endpoint.sessions.stop()
        return defer.maybeDeferred(service.node.protocol.transport.stopListening)

    def stop(self):
        return self.service.stop()

    def connected(self, other):
        name = self.service.book.name_of(other.key)
        return name is not None and self.service.presences.board.connected(name)

    def holds_secret_of(self, other):
        return self.service.secrets.of(other.key)

    @defer.inlineCallbacks
    def read_record(self, other, secret):
        """What this person's DHT node finds of `other`'s record for now under `secret`:
        None (nothing there, or nothing it can open), else the Presence."""
        epoch = epoch_of(self.reactor.seconds(), self.service.config.epoch_seconds)
        item = yield self.service.node.get(record_target(other.key, epoch, secret))
        if item is None:
            return None
        try:
            return open_record(other.key, epoch, item, secret)
        except PresenceError:
            return None


def fact(name, value):
    print("fact", name, json.dumps(value), flush=True)


def sleep(reactor, seconds):
    return task.deferLater(reactor, seconds, lambda: None)


@defer.inlineCallbacks
def until(reactor, condition, limit=WAIT):
    """Whether `condition()` came true within `limit` seconds, and how long it took."""
    began = reactor.seconds()
    while not condition():
        if reactor.seconds() - began > limit:
            return False, round(reactor.seconds() - began, 2)
        yield sleep(reactor, 0.05)
    return True, round(reactor.seconds() - began, 2)


def presence_facts(presence, owner):
    if presence is None:
        return None
    return {"status": presence.status, "addrs": [list(a) for a in presence.addrs],
            "own_port": owner.service.address[1], "introducers": len(presence.introducers)}


@defer.inlineCallbacks
def joined(reactor, people):
    for person in people:
        person.start()
    yield until(reactor, lambda: all(p.service._joiner.joined for p in people))


@defer.inlineCallbacks
def privacy(reactor, root, server):
    """alice's contacts bob, dave and erin; charlie, a stranger with her card. Then she removes
    bob while erin is offline."""
    alice, bob, dave, erin, charlie = (Person(reactor, root, n, f"127.0.0.{i + 1}", server)
                                       for i, n in enumerate(["alice", "bob", "dave", "erin", "charlie"]))
    for other in (bob, dave, erin):
        alice.service.add_contact(other.card, other.name)
        other.service.add_contact(alice.card, "alice")
    charlie.service.add_contact(alice.card, "alice", note="hi, it's charlie")
    yield joined(reactor, [alice, bob, dave, erin, charlie])
    fact("contacts_connected", (yield until(reactor, lambda: all(
        a.connected(b) and b.connected(a) for a, b in [(alice, bob), (alice, dave), (alice, erin)])))[0])
    yield erin.stop()
    fact("bob_holds_alice_secret", bob.holds_secret_of(alice) == alice.service.secrets.own != b"")
    fact("request_heard", (yield until(reactor, lambda: alice.requests_heard))[0] and
         [(r.name, r.card == charlie.card, r.note) for r in alice.requests_heard])
    fact("charlie_holds_a_secret", charlie.holds_secret_of(alice) != b"")
    fact("charlie_connected", charlie.connected(alice))
    fact("charlie_reads_request_point", presence_facts((yield charlie.read_record(alice, b"")), alice))
    secret = alice.service.secrets.own  # the ground truth: her data directory's
    fact("the_secret_opens_her_record", presence_facts((yield charlie.read_record(alice, secret)), alice))

    alice.service.remove_contact("bob")
    fact("rotated", alice.service.secrets.own != secret)
    fact("dave_gets_the_new_secret", (yield until(reactor, lambda: dave.holds_secret_of(alice) ==
                                                  alice.service.secrets.own))[0])
    fact("bob_holds_only_the_old_secret", bob.holds_secret_of(alice) == secret)
    yield sleep(reactor, 2.0)  # her offline records under the old secret are out
    fact("bob_reads_old_secret", presence_facts((yield bob.read_record(alice, secret)), alice))
    fact("bob_reads_request_point", presence_facts((yield bob.read_record(alice, b"")), alice))
    fact("dave_reads_new_secret", presence_facts((yield dave.read_record(alice, alice.service.secrets.own)), alice))
    bob.service.tracker.refresh()
    yield sleep(reactor, 6.0)  # his look-ups and handshakes have had their chance
    fact("bob_connected_after_removal", bob.connected(alice) and alice.service.endpoint.has_session(bob.key))
    fact("alice_refused_strangers", alice.service.endpoint.sessions.handshake_stats.strangers)
    fact("dave_still_connected", alice.connected(dave) and dave.connected(alice))
    fact("erin_offline_holds_the_old_secret", erin.holds_secret_of(alice) == secret)
    erin.restart()  # her look-up under the old secret finds "offline"; the request point leads on
    fact("erin_connected_again", (yield until(reactor, lambda: erin.connected(alice))))
    fact("erin_gets_the_new_secret", (yield until(reactor, lambda: erin.holds_secret_of(alice) ==
                                                  alice.service.secrets.own))[0])
    for person in (alice, bob, dave, erin, charlie):
        yield person.stop()


@defer.inlineCallbacks
def requests(reactor, root, server):
    """charlie, mallory and olivia ask alice; she accepts, blocks and ignores them."""
    alice, charlie, mallory, olivia = (Person(reactor, root, n, f"127.0.0.{i + 1}", server)
                                       for i, n in enumerate(["alice", "charlie", "mallory", "olivia"]))
    for person in (charlie, mallory, olivia):
        person.service.add_contact(alice.card, "alice", note=f"{person.name} here")
    yield joined(reactor, [alice, charlie, mallory, olivia])
    fact("requests", (yield until(reactor, lambda: len(alice.service.requests()) == 3))[0] and sorted(
        (r.name, r.note) for r in alice.service.requests()))
    fact("listener_heard", sorted(r.name for r in alice.requests_heard))

    alice.service.accept_request("charlie")
    fact("accepted_connected", (yield until(reactor, lambda: alice.connected(charlie) and charlie.connected(alice))))
    fact("accepted_secrets", (yield until(reactor, lambda: charlie.holds_secret_of(alice) == alice.service.secrets.own
                                          and alice.holds_secret_of(charlie) == charlie.service.secrets.own))[0])
    fact("accepted_in_contacts_file", encode_card(charlie.key) in (alice.data_dir / "contacts.txt").read_text())

    alice.service.block("mallory")
    alice.service.ignore_request("olivia")
    fact("after_answers", [r.name for r in alice.service.requests()])
    heard, refused = len(alice.requests_heard), alice.service.endpoint.sessions.handshake_stats.strangers
    for person in (mallory, olivia):  # they ask again, as they would at their next reach
        person.service._asked.clear()
        person.service.tracker.refresh()
    asked_again, took = yield until(reactor, lambda: len(alice.service.requests()) >= 1, limit=10.0)
    yield sleep(reactor, 3.0)  # mallory's ask, had it got through, would be in by now too
    fact("asked_again", [r.name for r in alice.service.requests()])
    fact("heard_after_answers", [r.name for r in alice.requests_heard[heard:]])
    fact("mallory_blocked_in_file", encode_card(mallory.key) in (alice.data_dir / "blocked.txt").read_text())
    fact("mallory_handshakes_refused", alice.service.endpoint.sessions.handshake_stats.strangers - refused)
    fact("mallory_connected", mallory.connected(alice) or alice.service.endpoint.has_session(mallory.key))
    for person in (alice, charlie, mallory, olivia):
        yield person.stop()


@defer.inlineCallbacks
def resets(reactor, root, server):
    """Forged UNKNOWN_SESSION notices (spoofed from bob's address) against bob's restart's
    (same identity, address and port)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.2", 0))
    port = probe.getsockname()[1]
    probe.close()
    alice = Person(reactor, root, "alice", "127.0.0.1", server)
    bob = Person(reactor, root, "bob", "127.0.0.2", server, port=port)
    alice.service.add_contact(bob.card, "bob")
    bob.service.add_contact(alice.card, "alice")
    yield joined(reactor, [alice, bob])
    fact("connected", (yield until(reactor, lambda: alice.connected(bob) and bob.connected(alice)))[0])
    yield sleep(reactor, 0.5)  # the RESET records are in
    sessions = alice.service.endpoint.sessions
    stats = sessions.handshake_stats
    started = stats.started
    session = sessions._peers[bob.key].current
    sender = RawSender()
    for n in range(20):
        forged = wire.encode_unknown_session(session.channel.keys.remote_index, bytes([n]) * wire.RESET_TOKEN_SIZE)
        sender.send(forged, session.addr, alice.service.address)
    sender.close()
    yield sleep(reactor, 1.0)
    fact("forged", {"forged_notices": stats.forged_notices, "honoured": stats.unknown_session_notices,
                    "handshakes_started": stats.started - started,
                    "same_session": sessions._peers[bob.key].current is session})
    yield bob.crash()
    bob.restart()  # same identity, same address and port, no memory of the session
    alice.service.send_message("bob", "are you there?")  # sealed under the session bob forgot
    got = yield until(reactor, lambda: any(
        m.text == "are you there?" for m in bob.service.history("alice")))
    fact("after_restart", {"delivered": got[0], "honoured": stats.unknown_session_notices,
                           "forged_notices": stats.forged_notices})
    for person in (alice, bob):
        yield person.stop()


SCENARIOS = {"privacy": privacy, "requests": requests, "resets": resets}


@defer.inlineCallbacks
def main(reactor, scenario, data_dir, host, port):
    yield SCENARIOS[scenario](reactor, Path(data_dir), (host, int(port)))
    print("done", flush=True)


if __name__ == "__main__":
    task.react(main, sys.argv[1:])
