"""How many replicas a presence record needs: a churn model, checked on the simulator.

    python3 bench/replication.py [--plot docs/replication.png] [--sim-nodes 600] [--no-sim]

Model. A record is put on the k nodes closest to its key every `refresh`
seconds and lives `ttl` seconds on each. The k nodes are online nodes picked
by id, so independently of how long they have been up: the time each one stays
up after the put is the *residual* of its session, with CDF
F_R(t) = (1/E[S]) * integral_0^t P(S > u) du for session length S. A replica is
also useless with probability h (a hostile node, one we cannot reach). Ignoring
repair between refreshes (the storage nodes' own republish is slower than the
owner's refresh), the record is unavailable at time t after a put when all k
replicas are gone, and averaged over a refresh interval:

    U(k) = (1/T) * [ integral_0^min(T, ttl) (h + (1 - h) F_R(t))^k dt + max(0, T - ttl) ]

Session lengths follow the heavy-tailed Weibull fits of Stutzbach & Rejaie,
"Understanding Churn in Peer-to-Peer Networks" (IMC 2006), whose measured
shapes lie between about 0.34 and 0.59 with scales of roughly 20 to 40 minutes
(see docs/replication.md). Heavy tails matter: a random online node is likely
to be in a long session, so replicas outlive what an exponential model with the
same median predicts: over a refresh interval much shorter than sessions, a
replica's chance of leaving is about refresh / E[S], and these fits have a mean
four times their median.

Check. The simulator runs a swarm whose nodes leave and return with Weibull
sessions (accelerated, so that unavailability is large enough to count), with
owners that put on k = 1, 2, 3 nodes; every few seconds it counts the records
no live node holds. With repair switched off (no republish, no hand-over to
newcomers) the figures should match the model; with the real DHT they should
be at most the model's.

Prints one JSON document; writes the plot if matplotlib is installed.
"""

import argparse
import json
import math
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kademlia.node import DHTNode  # noqa: E402
from kademlia.settings import DHTSettings  # noqa: E402
from kademlia.simswarm import Churn, SimSwarm, weibull, weibull_median  # noqa: E402
from tests.scenario_recipes import Owner, ReadOnlyNode  # noqa: E402

# Weibull fits of session lengths (shape, scale in minutes) as reported for
# three BitTorrent swarms in Stutzbach & Rejaie (IMC 2006); Kad and Gnutella
# sessions in the same study are similarly heavy-tailed.
MEASURED_FITS = {"Debian": (0.38, 42.4), "Red Hat": (0.34, 21.3), "FlatOut": (0.59, 41.9)}
CENTRAL = (0.5, 40.0)  # shape, scale (minutes): the middle of the measured range
REFRESH = 120.0  # kadchat.presence.PresencePublisher refreshes every 120 s
TTL = 600.0  # DESIGN.md: record TTL 600 s


# -- model -------------------------------------------------------------------------


def weibull_survival(shape, scale):
    return lambda t: math.exp(-((t / scale) ** shape))


def weibull_mean(shape, scale):
    return scale * math.gamma(1 + 1 / shape)


def residual_cdf(survival, mean, horizon, steps=4000):
    """F_R on a grid over [0, horizon]: returns a function of t (linear interpolation)."""
    dt = horizon / steps
    values, total, previous = [0.0], 0.0, survival(0.0)
    for i in range(1, steps + 1):
        current = survival(i * dt)
        total += (previous + current) / 2 * dt
        values.append(min(1.0, total / mean))
        previous = current

    def cdf(t):
        position = min(t / dt, steps)
        i = int(position)
        if i >= steps:
            return values[steps]
        return values[i] + (values[i + 1] - values[i]) * (position - i)

    return cdf


def unavailability(k, cdf, refresh=REFRESH, ttl=TTL, hostile=0.0, steps=2000):
    """U(k) of the module docstring, by the trapezoid rule."""
    alive_for = min(refresh, ttl)
    dt = alive_for / steps
    points = [(hostile + (1 - hostile) * cdf(i * dt)) ** k for i in range(steps + 1)]
    integral = dt * (sum(points) - (points[0] + points[-1]) / 2)
    return (integral + max(0.0, refresh - ttl)) / refresh


def weibull_model(shape, scale_seconds, refresh=REFRESH, ttl=TTL):
    survival = weibull_survival(shape, scale_seconds)
    return residual_cdf(survival, weibull_mean(shape, scale_seconds), min(refresh, ttl))


def exponential_model(mean_seconds, refresh=REFRESH, ttl=TTL):
    return lambda t: 1 - math.exp(-t / mean_seconds)


def smallest_k(cdf, target, hostile=0.0, limit=32, **options):
    for k in range(1, limit + 1):
        if unavailability(k, cdf, hostile=hostile, **options) <= target:
            return k
    return None


# -- simulator check -------------------------------------------------------------


class NoHandoverNode(DHTNode):
    """The model's assumption: no repair between refreshes, so no hand-over of held
    items to newly met closer nodes."""

    def __init__(self, clock, node_id=None, settings=None):
        settings = replace(settings or DHTSettings(), handover_per_second=0)
        super().__init__(clock, node_id=node_id, settings=settings)


def simulate(ks=(1, 2, 3), nodes=600, owners_per_k=100, shape=0.5, scale=600.0, refresh=300.0,
             warmup=300.0, duration=1200.0, sample_every=5.0, repair=False, seed=31):
    """Unavailability measured per k: the share of (record, sample time) pairs for
    which no live node holds the record."""
    settings = DHTSettings() if repair else DHTSettings(republish_interval=1e9)
    swarm = SimSwarm(seed=seed, settings=settings)
    swarm.add(nodes, None if repair else NoHandoverNode)
    swarm.seed_routing_tables()
    storage = list(swarm.nodes)
    owners = {}
    for k in ks:
        def factory(clock, node_id, settings, k=k):
            return ReadOnlyNode(clock, node_id=node_id, settings=replace(settings, k=k))
        made = swarm.add(owners_per_k, factory)
        swarm.seed_routing_tables(made, among=storage)
        owners[k] = [Owner(node, 1000 * k + i, swarm.clock) for i, node in enumerate(made)]
    everyone = [o for group in owners.values() for o in group]
    session = weibull(swarm.rng, shape, scale)
    churn = Churn(swarm, session=session, downtime=session, spare=[o.node for o in everyone])
    churn.start()
    swarm.run_all([o.publish() for o in everyone], limit=30)
    for owner in everyone:
        owner.start(refresh)
    swarm.advance(warmup)
    missing = {k: 0 for k in ks}
    samples = 0
    elapsed = 0.0
    while elapsed < duration:
        swarm.advance(sample_every, step=sample_every)
        elapsed += sample_every
        held = set()
        for node in swarm.nodes:
            for item, _ in node.store.items():
                held.add(item.target)
        samples += 1
        for k in ks:
            missing[k] += sum(1 for o in owners[k] if o.target not in held)
    churn.stop()
    for owner in everyone:
        owner.stop()
    swarm.stop()
    return {
        "repair": repair, "nodes": nodes, "owners_per_k": owners_per_k,
        "weibull_shape": shape, "weibull_scale_s": scale, "refresh_s": refresh, "ttl_s": TTL,
        "departures": churn.departures, "arrivals": churn.arrivals,
        "samples": samples * owners_per_k,
        "measured": {k: missing[k] / (samples * owners_per_k) for k in ks},
        "model": {k: unavailability(k, weibull_model(shape, scale, refresh, TTL), refresh, TTL)
                  for k in ks},
    }


# -- report ------------------------------------------------------------------------


def curves(ks):
    shape, scale_min = CENTRAL
    central = weibull_model(shape, scale_min * 60)
    result = {"weibull %.2f/%.0f min (central)" % CENTRAL: {k: unavailability(k, central) for k in ks}}
    for name, (fit_shape, fit_scale) in MEASURED_FITS.items():
        cdf = weibull_model(fit_shape, fit_scale * 60)
        result["weibull %.2f/%.1f min (%s)" % (fit_shape, fit_scale, name)] = {
            k: unavailability(k, cdf) for k in ks}
    median = weibull_median(shape, scale_min * 60)
    exponential = exponential_model(median / math.log(2))
    result["exponential, same median (%.0f min)" % (median / 60)] = {
        k: unavailability(k, exponential) for k in ks}
    for hostile in (0.1, 0.2, 0.3):
        result["central, %d%% replicas hostile" % round(hostile * 100)] = {
            k: unavailability(k, central, hostile=hostile) for k in ks}
    return result


def plot(path, model_curves, checks):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: pip install matplotlib"
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 5))
    for name, values in model_curves.items():
        ks = sorted(values)
        style = "--" if "exponential" in name else (":" if "hostile" in name else "-")
        left.semilogy(ks, [max(values[k], 1e-16) for k in ks], style, marker=".", label=name)
    left.axhline(1e-4, color="grey", linewidth=0.8)
    left.axvline(8, color="black", linewidth=0.8)
    left.set_xlabel("replication factor k")
    left.set_ylabel("P(record unavailable)")
    left.set_ylim(1e-16, 1)
    left.set_title("Model: refresh %.0f s, TTL %.0f s" % (REFRESH, TTL))
    left.legend(fontsize=7)
    for check in checks:
        label = "simulator, %s" % ("real DHT (repair on)" if check["repair"] else "no repair")
        seen = [k for k in sorted(check["measured"]) if check["measured"][k] > 0]
        unseen = [k for k in sorted(check["measured"]) if check["measured"][k] == 0]
        line, = right.semilogy(seen, [check["measured"][k] for k in seen], "o", label=label,
                               markersize=8 if check["repair"] else 5)
        if unseen:  # nothing missing in any sample: below one sample's share
            right.semilogy(unseen, [1 / check["samples"]] * len(unseen), "v", color=line.get_color(),
                           label=label + ": none missing (below)")
    right.set_xticks(range(1, 4))
    if checks:
        check = checks[0]
        ks = sorted(check["model"])
        right.semilogy(ks, [check["model"][k] for k in ks], "-", label="model")
        right.set_title("Check: Weibull %.2f/%.0f s sessions, refresh %.0f s, %d nodes" % (
            check["weibull_shape"], check["weibull_scale_s"], check["refresh_s"], check["nodes"]))
        right.legend(fontsize=8)
    right.set_xlabel("replication factor k")
    right.set_ylabel("P(record unavailable)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    return None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plot", default="docs/replication.png")
    parser.add_argument("--sim-nodes", type=int, default=600)
    parser.add_argument("--no-sim", action="store_true")
    parser.add_argument("--target", type=float, default=1e-4,
                        help="unavailability a presence record may have")
    args = parser.parse_args(argv)
    ks = range(1, 13)
    model_curves = curves(ks)
    checks = [] if args.no_sim else [simulate(nodes=args.sim_nodes, repair=False),
                                     simulate(nodes=args.sim_nodes, repair=True)]
    central = weibull_model(CENTRAL[0], CENTRAL[1] * 60)
    recommended = {f"hostile {h:.0%}": smallest_k(central, args.target, hostile=h)
                   for h in (0.0, 0.1, 0.2, 0.3)}
    plot_problem = plot(args.plot, model_curves, checks) if args.plot else None
    print(json.dumps({
        "refresh_s": REFRESH, "ttl_s": TTL, "target_unavailability": args.target,
        "central_median_session_min": round(weibull_median(*CENTRAL), 1),
        "smallest_k_meeting_target": recommended,
        "model": {name: {k: float("%.3g" % u) for k, u in values.items()}
                  for name, values in model_curves.items()},
        "simulator_checks": checks,
        "plot": args.plot if args.plot and not plot_problem else plot_problem,
    }, indent=1))


if __name__ == "__main__":
    main()
