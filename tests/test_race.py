from twisted.internet import defer, task

from kadchat.race import AllFailed, race


class Contender:
    """Records when it was started and whether it was cancelled; settles when told."""

    def __init__(self, clock, log, name):
        self.clock, self.log, self.name = clock, log, name
        self.deferred = None

    def __call__(self):
        self.log.append(("start", self.name, self.clock.seconds()))
        self.deferred = defer.Deferred(lambda _: self.log.append(("cancel", self.name)))
        return self.deferred


def setup(*delays):
    clock, log = task.Clock(), []
    contenders = [Contender(clock, log, name) for name in "abc"[:len(delays)]]
    return clock, log, contenders, race(clock, list(zip(delays, contenders)))


def test_fast_path_winning_within_the_grace_period_means_the_slow_one_never_starts():
    clock, log, (direct, relay), result = setup(0, 3.0)
    clock.advance(1.0)
    direct.deferred.callback("direct")
    clock.advance(10.0)
    assert result.result == "direct"
    assert log == [("start", "a", 0.0)]
    assert clock.getDelayedCalls() == []


def test_slow_path_starts_late_and_its_win_cancels_the_fast_one():
    clock, log, (direct, relay), result = setup(0, 3.0)
    clock.advance(3.0)
    relay.deferred.callback("relay")
    assert result.result == "relay"
    assert log == [("start", "a", 0.0), ("start", "b", 3.0), ("cancel", "a")]


def test_race_fails_only_when_every_contender_failed():
    clock, log, (direct, relay), result = setup(0, 3.0)
    direct.deferred.errback(ValueError("no answer"))
    assert not result.called
    clock.advance(3.0)
    relay.deferred.errback(ValueError("relay refused"))
    failure = result.result
    result.addErrback(lambda f: None)
    assert failure.check(AllFailed)
    assert [f.value.args[0] for f in failure.value.failures] == ["no answer", "relay refused"]


def test_cancelling_the_race_cancels_runners_and_pending_starts():
    clock, log, (direct, relay), result = setup(0, 3.0)
    result.cancel()
    result.addErrback(lambda f: f.trap(defer.CancelledError))
    clock.advance(5.0)
    assert log == [("start", "a", 0.0), ("cancel", "a")]
    assert clock.getDelayedCalls() == []


def test_a_contender_that_wins_at_once_keeps_later_ones_from_being_scheduled():
    clock = task.Clock()
    started = []
    result = race(clock, [(0, lambda: defer.succeed("lan")), (1.0, lambda: started.append("relay"))])
    assert result.result == "lan"
    clock.advance(2.0)
    assert started == [] and clock.getDelayedCalls() == []
