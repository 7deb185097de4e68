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
