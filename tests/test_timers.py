from twisted.internet import defer, task
from twisted.logger import globalLogPublisher

from kademlia.timers import Loop, SingleFlight, cancel


def test_loop_calls_every_interval_until_stopped_and_leaves_nothing_scheduled():
    clock, calls = task.Clock(), []
    loop = Loop(clock, 5.0, lambda: calls.append(clock.seconds()))
    loop.start(now=True)
    clock.advance(5.0)
    clock.advance(5.0)
    assert calls == [0.0, 5.0, 10.0]
    assert loop.running
    d = loop.stop()
    assert d.called and not loop.running
    assert clock.getDelayedCalls() == []


def test_loop_start_twice_keeps_one_schedule_and_restarts_after_stop():
    clock, calls = task.Clock(), []
    loop = Loop(clock, 1.0, lambda: calls.append(clock.seconds()))
    loop.start()
    loop.start()
    clock.advance(1.0)
    assert calls == [1.0]
    loop.stop()
    loop.start(now=True)
    assert calls == [1.0, 1.0]
    loop.stop()


def test_a_loop_whose_job_raises_stops_and_logs_instead_of_failing_silently():
    clock, logged = task.Clock(), []

    def boom():
        raise RuntimeError("bad job")

    loop = Loop(clock, 1.0, boom)
    globalLogPublisher.addObserver(logged.append)
    try:
        loop.start(now=True)
    finally:
        globalLogPublisher.removeObserver(logged.append)
    assert not loop.running
    assert clock.getDelayedCalls() == []
    assert [e["log_failure"].value.args for e in logged if "log_failure" in e] == [("bad job",)]


def test_cancel_clears_a_pending_call_and_ignores_fired_or_missing_ones():
    clock, calls = task.Clock(), []
    pending = clock.callLater(1.0, calls.append, 1)
    assert cancel(pending) is None
    clock.advance(2.0)
    assert calls == []
    fired = clock.callLater(1.0, calls.append, 2)
    clock.advance(1.0)
    assert cancel(fired) is None and cancel(None) is None
    assert calls == [2]


def test_single_flight_shares_one_attempt_between_callers_and_starts_anew_after():
    attempts = []

    def attempt():
        attempts.append(defer.Deferred())
        return attempts[-1]

    flight = SingleFlight(attempt)
    first, second = flight(), flight()
    assert len(attempts) == 1 and flight.in_flight
    attempts[0].callback("done")
    assert (first.result, second.result) == ("done", "done")
    assert not flight.in_flight
    third = flight()
    assert len(attempts) == 2 and not third.called


def test_single_flight_hands_a_failure_to_every_waiter():
    pending = defer.Deferred()
    flight = SingleFlight(lambda: pending)
    waiters = [flight(), flight()]
    pending.errback(ValueError("no bootstrap node"))
    for waiter in waiters:
        failure = []
        waiter.addErrback(failure.append)
        assert failure[0].check(ValueError)
    assert not flight.in_flight
