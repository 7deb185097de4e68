"""The prototype's wished-for tests, at 2,000 nodes on the simulated network:
limited bandwidth, slow links, lossy links and partial connectivity (A reaches
B, B reaches C, A cannot reach C). 200 owners refresh their record every
REFRESH seconds; lookups run right after the first publish and one refresh
later. Seeded, virtual clock; each assertion message states the figures."""

import pytest

from tests.scenario_recipes import link_faults

CASES = {
    # every uplink 1 kB/s (8 kbit/s) with a 2 kB buffer: queues build, datagrams drop
    "bandwidth": dict(kind="bandwidth", bandwidth=1000, queue=2000),
    # each node 100-300 ms from the network core: 200-600 ms per link
    "slow": dict(kind="slow"),
    # 30% of all datagrams lost (a query and its answer both arrive 49% of the time)
    "lossy": dict(kind="lossy", loss=0.3),
    # 20% of the nodes (behind NATs, say) cannot reach one another, both ways
    "partial": dict(kind="partial", nat_share=0.2),
}

# one refresh after the first publish: (found, newest seq, median lookup seconds at most)
TARGETS = {"bandwidth": (0.999, 0.99, 10.0), "slow": (0.999, 0.99, 6.0),
           "lossy": (0.99, 0.97, 4.0), "partial": (0.999, 0.99, 1.0)}


def describe(name, figures):
    return (f"{name}: right after publishing: {figures['lookups'].describe()}; one refresh "
            f"later: {figures['one_refresh_later'].describe()}; drops {figures['drops']}")


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_lookups_succeed_over_faulty_links(name):
    figures = link_faults(seed=14, nodes=2000, owners=200, lookups=600, **CASES[name])
    later = figures["one_refresh_later"]
    found, newest, slowest = TARGETS[name]
    detail = describe(name, figures)
    assert later.found_rate >= found, detail
    assert later.newest_rate >= newest, detail
    assert later.median_seconds <= slowest, detail
    assert figures["timers_left"] == []
