"""kademlia.ratelimit: per-IP token buckets."""

from twisted.internet.task import Clock

from kademlia.ratelimit import PerIPRateLimiter


def make_limiter(rate=10, burst=5, max_tracked=100):
    clock = Clock()
    return PerIPRateLimiter(clock.seconds, rate, burst, max_tracked), clock


def allowed(limiter, ip, tries):
    return sum(limiter.allow(ip) for _ in range(tries))


def test_a_burst_is_allowed_then_refused():
    limiter, _ = make_limiter(rate=10, burst=5)
    assert allowed(limiter, "127.0.0.2", 20) == 5


def test_tokens_refill_at_the_rate():
    limiter, clock = make_limiter(rate=10, burst=5)
    allowed(limiter, "127.0.0.2", 5)
    clock.advance(0.3)
    assert allowed(limiter, "127.0.0.2", 10) == 3


def test_refill_never_exceeds_the_burst():
    limiter, clock = make_limiter(rate=10, burst=5)
    allowed(limiter, "127.0.0.2", 5)
    clock.advance(1000)
    assert allowed(limiter, "127.0.0.2", 50) == 5


def test_refused_attempts_do_not_spend_future_tokens():
    limiter, clock = make_limiter(rate=10, burst=5)
    allowed(limiter, "127.0.0.2", 5)
    allowed(limiter, "127.0.0.2", 1000)  # hammering while empty
    clock.advance(0.1)
    assert limiter.allow("127.0.0.2")


def test_ips_have_separate_buckets():
    limiter, _ = make_limiter(rate=10, burst=5)
    allowed(limiter, "127.0.0.2", 5)
    assert allowed(limiter, "127.0.0.3", 5) == 5


def test_sustained_rate_is_bounded():
    limiter, clock = make_limiter(rate=10, burst=5)
    total = 0
    for _ in range(100):  # 10 s, 100 tries per 0.1 s
        total += allowed(limiter, "127.0.0.2", 100)
        clock.advance(0.1)
    assert 100 <= total <= 106


def test_memory_is_bounded_by_forgetting_the_least_recent_ip():
    limiter, _ = make_limiter(rate=10, burst=2, max_tracked=3)
    allowed(limiter, "127.0.0.1", 2)  # empties its bucket
    for n in range(2, 5):
        limiter.allow(f"127.0.0.{n}")
    assert len(limiter._buckets) == 3
    # 127.0.0.1 was forgotten, so it starts again with a full bucket.
    assert limiter.allow("127.0.0.1")
