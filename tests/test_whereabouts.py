"""kadchat.whereabouts: where contacts were last reachable, kept across restarts;
and kadchat.reachability trying them there as soon as it starts."""

import json
import os

from twisted.internet import task

from kadchat.presence import Presence
from kadchat.reachability import Reachability
from kadchat.whereabouts import Whereabouts
from tests.test_reachability import INTRODUCER, ME, PEER, PEER_HOME, Sessions, kinds

CAROL = b"C" * 32


def test_records_and_session_addresses_survive_a_restart_written_once_after_a_burst(tmp_path):
    clock, path = task.Clock(), tmp_path / "whereabouts.json"
    places = Whereabouts(clock, str(path), delay=5.0)
    places.load()
    places.record(PEER, PEER_HOME)
    places.record(PEER, Presence("online", addrs=[("192.0.2.1", 1)], ts=PEER_HOME.ts - 1))  # older: ignored
    places.session_at(PEER, ("198.51.100.8", 40002))
    assert not path.exists()  # a burst of changes is written once, `delay` later
    clock.advance(5.0)
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    again = Whereabouts(clock, str(path))
    again.load()
    [(key, presence)] = again.known([CAROL, PEER])
    assert key == PEER
    assert presence.addrs == (("198.51.100.8", 40002), ("198.51.100.7", 40001))
    assert (presence.nat, presence.introducers) == (PEER_HOME.nat, PEER_HOME.introducers)


def test_stop_writes_what_is_pending_and_a_damaged_file_reads_as_empty(tmp_path):
    clock, path = task.Clock(), tmp_path / "whereabouts.json"
    places = Whereabouts(clock, str(path))
    places.record(PEER, PEER_HOME)
    places.stop()
    assert PEER.hex() in json.loads(path.read_text())
    assert clock.getDelayedCalls() == []
    for damage in ("{not json", json.dumps({PEER.hex(): {"addrs": 5}}), json.dumps([1]), "\xff"):
        path.write_text(damage)
        places = Whereabouts(clock, str(path))
        places.load()
        assert places.known([PEER]) == []


def test_a_started_reachability_tries_every_remembered_contact_at_once(tmp_path):
    clock, path = task.Clock(), tmp_path / "whereabouts.json"
    places = Whereabouts(clock, str(path))
    places.record(PEER, PEER_HOME)
    places.stop()
    sessions = Sessions(clock)
    remembered = Whereabouts(clock, str(path))
    remembered.load()
    reach = Reachability(clock, lambda data, to: None, ME, lambda: [PEER, CAROL], sessions.offer,
                         sessions.has_session, lambda: None, whereabouts=remembered)

    class Table:  # a routing table that knows the introducer only
        own_id = b"\0" * 20

        def contacts(self):
            return []

        def closest(self, target):
            return [type("Contact", (), {"address": INTRODUCER})()]

    reach.start(Table(), [])
    [(when, key, paths)] = sessions.offers
    assert (when, key) == (0, PEER)
    assert paths[0] == PEER_HOME.addrs[0] and "IntroductionRoute" in kinds(paths)
    reach.stop()
