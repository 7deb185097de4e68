"""The join life cycle (kadchat.joining), tested by the transcript of what it asks for."""

from twisted.internet import defer, task

from kadchat.joining import TRANSITIONS, Joiner, JoinEvent, JoinState


class Swarm:
    """Stands in for DHTNode.bootstrap: each call is an attempt the test settles."""

    def __init__(self, clock, transcript):
        self.clock, self.transcript, self.attempts = clock, transcript, []

    def bootstrap(self, addresses):
        self.transcript.append(("bootstrap", self.clock.seconds()))
        self.attempts.append(defer.Deferred())
        return self.attempts[-1]


def machine():
    clock, transcript = task.Clock(), []
    swarm = Swarm(clock, transcript)
    joiner = Joiner(clock, swarm.bootstrap, lambda size: transcript.append(("joined", size)),
                    lambda: transcript.append(("nobody answered",)), retry_interval=10.0)
    return clock, transcript, swarm, joiner


def test_joins_at_start_and_tells_once_with_the_table_size():
    clock, transcript, swarm, joiner = machine()
    joiner.start()
    swarm.attempts[0].callback(5)
    clock.advance(60)
    assert transcript == [("bootstrap", 0), ("joined", 5)]
    assert joiner.state is JoinState.JOINED
    assert clock.getDelayedCalls() == []


def test_retries_every_interval_until_a_node_answers():
    clock, transcript, swarm, joiner = machine()
    joiner.start()
    swarm.attempts[0].callback(0)
    clock.advance(10)
    swarm.attempts[1].errback(OSError("network unreachable"))
    clock.advance(10)
    swarm.attempts[2].callback(3)
    clock.advance(30)
    assert transcript == [("bootstrap", 0), ("nobody answered",), ("bootstrap", 10), ("nobody answered",),
                          ("bootstrap", 20), ("joined", 3)]


def test_refresh_while_an_attempt_runs_waits_for_that_attempt_instead_of_starting_another():
    clock, transcript, swarm, joiner = machine()
    joiner.start()
    refreshed = joiner.join()
    assert not refreshed.called and len(swarm.attempts) == 1
    swarm.attempts[0].callback(2)
    assert refreshed.called
    assert joiner.join().called  # joined: nothing to do


def test_an_attempt_ending_after_stop_changes_nothing_and_stop_leaves_no_timer():
    clock, transcript, swarm, joiner = machine()
    joiner.start()
    joiner.stop()
    swarm.attempts[0].callback(4)
    assert joiner.state is JoinState.STOPPING
    assert transcript == [("bootstrap", 0)]
    joiner.stopped()
    assert joiner.state is JoinState.STOPPED
    assert clock.getDelayedCalls() == []


def test_every_state_can_be_left_towards_stopped():
    states = {state for state, _ in TRANSITIONS}
    assert states == set(JoinState)
    for state in JoinState:
        reached, frontier = {state}, [state]
        while frontier:
            current = frontier.pop()
            for (before, _), (after, _) in TRANSITIONS.items():
                if before is current and after not in reached:
                    reached.add(after)
                    frontier.append(after)
        assert JoinState.STOPPED in reached, state
    assert (JoinState.STOPPED, JoinEvent.START) in TRANSITIONS


# -- what the user is told, and the bootstrap nodes remembered ------------------------

def told(joiner):
    """Route `joiner`'s log events into a list: [(level name, text)]."""
    from twisted.logger import Logger, formatEvent
    events = []
    joiner.log = Logger(observer=lambda e: events.append((e["log_level"].name, formatEvent(e))))
    return events


def test_nobody_answering_is_said_once_naming_every_node_tried_and_cleared_on_joining():
    clock, transcript, swarm, joiner = machine()
    events = told(joiner)
    joiner.addresses = [("192.0.2.7", 6881), ("boot.example.org", 7000)]
    joiner.start()
    assert joiner.unreachable == ()  # nothing tried yet: no banner
    swarm.attempts[0].callback(0)
    clock.advance(10)
    swarm.attempts[1].callback(0)
    assert joiner.unreachable == ("192.0.2.7:6881", "boot.example.org:7000")
    assert [e for e in events if e[0] == "warn"] == [
        ("warn", "cannot reach the network: no answer from 192.0.2.7:6881, boot.example.org:7000; "
                 "trying again every 10 s")]
    clock.advance(10)
    swarm.attempts[2].callback(4)
    assert joiner.unreachable == () and joiner.joined


def test_without_any_node_known_the_warning_says_how_to_give_one_once():
    clock, transcript, swarm, joiner = machine()
    events = told(joiner)
    joiner.start()
    for i in range(3):
        swarm.attempts[i].callback(0)
        clock.advance(10)
    warnings = [text for level, text in events if level == "warn"]
    assert len(warnings) == 1 and "give -I HOST -P PORT" in warnings[0]


def saving_machine(tmp_path, resolve=None):
    clock, transcript = task.Clock(), []
    swarm = Swarm(clock, transcript)
    asked = []

    def bootstrap(addresses):
        asked.append(list(addresses))
        return swarm.bootstrap(addresses)
    joiner = Joiner(clock, bootstrap, lambda size: transcript.append(("joined", size)), lambda: None,
                    retry_interval=10.0, resolve=resolve, bootstrap_file=str(tmp_path / "bootstrap.txt"))
    return swarm, joiner, asked


def test_a_given_node_is_added_to_the_bootstrap_file_once_it_answered(tmp_path):
    path = tmp_path / "bootstrap.txt"
    path.write_bytes(b"# mine\n192.0.2.1 6881")  # the user's bytes, no final newline
    swarm, joiner, asked = saving_machine(tmp_path)
    joiner.addresses = [("127.0.0.1", 4000), ("192.0.2.1", 6881)]
    joiner.unsaved = [("127.0.0.1", 4000)]
    joiner.start()
    joiner.heard_from(("127.0.0.1", 4000), b"\x01" * 20, ("127.0.0.1", 5555))
    swarm.attempts[0].callback(3)
    assert path.read_bytes() == b"# mine\n192.0.2.1 6881\n127.0.0.1 4000\n"
    assert joiner.unsaved == []


def test_a_given_node_that_never_answered_is_not_saved_even_when_others_let_us_join(tmp_path):
    swarm, joiner, asked = saving_machine(tmp_path)
    joiner.addresses = [("127.0.0.1", 4000), ("127.0.0.1", 4001)]
    joiner.unsaved = [("127.0.0.1", 4000)]
    joiner.start()
    joiner.heard_from(("127.0.0.1", 4001))  # someone else answered
    joiner.heard_from(("127.0.0.1", 9999))  # and a node we never asked as a bootstrap node
    swarm.attempts[0].callback(3)
    assert joiner.joined and not (tmp_path / "bootstrap.txt").exists()


def test_host_names_are_resolved_and_saved_as_given_and_one_that_does_not_resolve_is_skipped(tmp_path):
    from twisted.internet.error import DNSLookupError
    names = {"boot.example.org": "127.0.0.9"}

    def resolve(host):
        return defer.succeed(names[host]) if host in names else defer.fail(DNSLookupError(host))
    swarm, joiner, asked = saving_machine(tmp_path, resolve)
    joiner.addresses = [("nowhere.invalid", 1), ("boot.example.org", 4000)]
    joiner.unsaved = list(joiner.addresses)
    joiner.start()
    assert asked == [[("127.0.0.9", 4000)]]
    joiner.heard_from(("127.0.0.9", 4000))
    swarm.attempts[0].callback(2)
    assert (tmp_path / "bootstrap.txt").read_text().splitlines()[1:] == ["boot.example.org 4000"]
