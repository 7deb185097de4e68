"""Lookup success against the share of hostile nodes, 0% to 50%: prints the curve as JSON.

    python3 bench/hostile_sweep.py [--nodes 2000] [--lookups 300] [--step 0.1] [--kinds mixed,lie]

Kinds (tests/hostile_nodes.py): "drop" answers pings only; "stale" serves the
first version it saw of each record forever; "forge" serves forged items and
garbage contacts; "mixed" is those three in equal shares (the scenario tests
assert on it at 20% and 30%); "lie" is a Sybil coalition that names its members
under made-up ids next to every target, which BEP 5 ids cannot rule out;
"lie42" is the same coalition claiming only ids BEP 42 allows its addresses
(the nearest of each member's 8 slices), referring the members best placed.
`--node-id-check public|all` makes honest nodes check ids (kademlia.nodeid;
"all" because the simulator's addresses are 10/8, which BEP 42 exempts).
Each point: a fresh seeded swarm, 200 honest owners publishing, lookups by
honest readers one refresh later (success = the newest seq found).
"""

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kademlia.settings import DHTSettings  # noqa: E402
from tests.scenario_recipes import hostile  # noqa: E402

KINDS = {"mixed": ("drop", "stale", "forge"), "drop": ("drop",), "stale": ("stale",),
         "forge": ("forge",), "lie": ("lie",), "lie42": ("lie42",)}


def sweep(kinds, fractions, nodes, owners, lookups, seed, settings):
    curves = {}
    for name in kinds:
        points = []
        for fraction in fractions:
            started = time.monotonic()
            figures = hostile(fraction, KINDS[name], seed=seed, nodes=nodes, owners=owners,
                              lookups=lookups, settings=settings)
            later = figures["one_refresh_later"]
            points.append({"hostile": fraction, **later.as_dict(),
                           "right_after_newest_rate": round(figures["right_after"].newest_rate, 5),
                           "wall_seconds": round(time.monotonic() - started, 1)})
        curves[name] = points
    return curves


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=2000)
    parser.add_argument("--owners", type=int, default=200)
    parser.add_argument("--lookups", type=int, default=300)
    parser.add_argument("--step", type=float, default=0.1)
    parser.add_argument("--max", type=float, default=0.5)
    parser.add_argument("--kinds", default="mixed,drop,stale,forge,lie,lie42")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--node-id-check", default="off", choices=("off", "public", "all"))
    args = parser.parse_args(argv)
    settings = DHTSettings(node_id_check=args.node_id_check)
    steps = int(round(args.max / args.step))
    fractions = [round(i * args.step, 4) for i in range(steps + 1)]
    curves = sweep(args.kinds.split(","), fractions, args.nodes, args.owners, args.lookups, args.seed,
                   settings)
    print(json.dumps({"nodes": args.nodes, "owners": args.owners, "lookups_per_point": args.lookups,
                      "seed": args.seed, "node_id_check": args.node_id_check, "curves": curves},
                     indent=1))


if __name__ == "__main__":
    main()
