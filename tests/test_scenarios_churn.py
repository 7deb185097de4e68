"""Churn at scale on the simulated network: half the swarm dying at once, and a
swarm whose users come and go with heavy-tailed session lengths.

2,000 nodes, 200 owners refreshing their record every REFRESH seconds (as
presence records are), seeded, virtual clock. Each assertion message states
the figure measured.
"""

import pytest

from tests.scenario_recipes import half_dies, session_churn


@pytest.mark.slow
def test_half_the_swarm_dying_silently_keeps_records_and_newest_seq_after_one_refresh():
    figures = half_dies(seed=11, nodes=2000, owners=200, lookups=1000)
    right_after, later = figures["right_after"], figures["one_refresh_later"]
    # All 8 replicas of a record die together with probability 2**-8 (0.4%).
    assert right_after.found_rate >= 0.99, "right after 50% died: " + right_after.describe()
    detail = "one refresh after 50% died: " + later.describe()
    assert later.found_rate >= 0.999, detail
    assert later.newest_rate >= 0.99, detail
    assert figures["timers_left"] == []


@pytest.mark.slow
def test_continuous_join_and_leave_with_weibull_sessions_keeps_lookups_succeeding():
    # Session lengths and downtimes: Weibull, shape 0.5, scale 40 min (median ~19 min),
    # in the range of the fits Stutzbach & Rejaie (IMC 2006) report; see docs/replication.md.
    figures = session_churn(seed=12, nodes=2000, owners=200, lookups=800, duration=600.0,
                            shape=0.5, scale=40 * 60)
    total = figures["total"]
    detail = (f"{figures['departures']} departures, {figures['arrivals']} arrivals in 600 s "
              f"(median session {figures['median_session'] / 60:.0f} min): {total.describe()}; "
              f"per 150 s: {[t.describe() for t in figures['tallies']]}")
    assert figures["departures"] >= 100, detail
    assert total.found_rate >= 0.995, detail
    assert total.newest_rate >= 0.99, detail
    assert figures["timers_left"] == []
