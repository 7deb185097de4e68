"""Run the benchmarks and the scenario figures at small sizes; print one markdown table.

    python3 bench/report.py [--nodes 500] [--full] [--skip chat_roundtrip,put_throughput]

Every other bench/*.py runs as its own process with small arguments and its JSON
is flattened into rows (numbers only). The scenario figures (churn, partition,
link faults, hostile nodes, poisoning) come from tests/scenario_recipes.py, at
`--nodes` nodes instead of the tests' 2,000. `--full` runs the benchmarks with
their own default sizes. Asserts nothing: a benchmark that fails shows its
error in the table.
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import scenario_recipes as scenarios  # noqa: E402

# Small arguments per benchmark (the default sizes take minutes).
SMALL = {
    "chat_crypto.py": ["--messages", "2000", "--slow-messages", "2"],
    "chat_roundtrip.py": ["--round-trips", "50", "--burst", "300"],
    "dht_swarm.py": ["--sim", "--nodes", "500", "--items", "20", "--gets", "100"],
    "fuzz.py": ["--inputs", "5000"],
    "history_search.py": ["--messages", "10000", "--queries", "20"],
    "mainline_pacing.py": ["--items", "10"],
    "hostile_sweep.py": ["--nodes", "300", "--owners", "30", "--lookups", "60", "--step", "0.25",
                         "--kinds", "mixed,lie"],
    "presence_latency.py": ["--contacts", "1,20", "--trials", "5,2", "--no-crash"],
    "put_throughput.py": ["--duration", "1", "--puts", "5000"],
    "replication.py": ["--no-sim", "--plot", ""],
}
ROWS_PER_BENCHMARK = 40
TIMEOUT = 900


def flatten(value, prefix=""):
    """(dotted path, number) for every numeric leaf of a JSON document."""
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        yield prefix, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from flatten(item, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from flatten(item, f"{prefix}[{index}]")


def run_benchmark(script, full):
    arguments = [] if full else SMALL.get(script.name, [])
    started = time.monotonic()
    try:
        done = subprocess.run([sys.executable, str(script), *arguments], capture_output=True,
                              text=True, timeout=TIMEOUT, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return [(script.stem, "error", f"no result in {TIMEOUT} s", "")]
    took = f"{time.monotonic() - started:.0f} s, {' '.join(arguments) or 'defaults'}"
    try:
        document = json.loads(done.stdout)
    except ValueError:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return [(script.stem, "error", last[:120], took)]
    rows = [(script.stem, path, number, took) for path, number in flatten(document)]
    if len(rows) > ROWS_PER_BENCHMARK:
        rows = rows[:ROWS_PER_BENCHMARK] + [(script.stem, "...", f"{len(rows)} figures in all", took)]
    return rows


def scenario_rows(nodes):
    owners, lookups = max(20, nodes // 10), max(100, nodes // 4)
    size = f"{nodes} nodes, {owners} owners, {lookups} lookups"

    def tally_rows(name, label, tally):
        return [(name, f"{label} found", f"{tally.found_rate:.2%}", size),
                (name, f"{label} newest seq", f"{tally.newest_rate:.2%}", size),
                (name, f"{label} median lookup", f"{tally.median_seconds or 0:.2f} s", size)]

    rows = []
    figures = scenarios.half_dies(nodes=nodes, owners=owners, lookups=lookups)
    rows += tally_rows("50% die", "right after", figures["right_after"])
    rows += tally_rows("50% die", "one refresh later", figures["one_refresh_later"])
    figures = scenarios.session_churn(nodes=nodes, owners=owners, lookups=lookups)
    rows += [("session churn", "departures / arrivals in 600 s",
              f"{figures['departures']} / {figures['arrivals']}", size)]
    rows += tally_rows("session churn", "all", figures["total"])
    figures = scenarios.split(nodes=nodes, owners=owners, lookups=lookups)
    rows += tally_rows("10-min split", "owner's side", figures["same_side"])
    rows += tally_rows("10-min split", "other side", figures["across"])
    state = figures["one_refresh_after_heal"]
    rows += [("10-min split", "records converged on the k closest, one refresh after healing",
              f"{state['records_converged']:.1%}", size),
             ("10-min split", "copies lagging elsewhere", f"{state['lagging_copies']}/{state['copies']}",
              size)]
    rows += tally_rows("10-min split", "after healing", figures["after_heal"])
    for kind, options in (("bandwidth", {"bandwidth": 1000, "queue": 2000}), ("slow", {}),
                          ("lossy", {"loss": 0.3}), ("partial", {"nat_share": 0.2})):
        figures = scenarios.link_faults(kind, nodes=nodes, owners=owners, lookups=lookups, **options)
        rows += tally_rows(f"links: {kind}", "one refresh later", figures["one_refresh_later"])
    for fraction in (0.2, 0.3):
        figures = scenarios.hostile(fraction, nodes=nodes, owners=owners, lookups=lookups)
        rows += tally_rows(f"{fraction:.0%} hostile", "one refresh later", figures["one_refresh_later"])
    figures = scenarios.poisoning(nodes=nodes, owners=owners, attacked=min(20, owners), lookups=lookups)
    for attack, outcome in figures["outcomes"].items():
        rows.append(("poisoning", attack, json.dumps(outcome), size))
    rows += [("poisoning", "honest records intact", f"{figures['records_intact']:.0%}", size),
             ("poisoning", "most items on a flooded node",
              f"{figures['most_items_on_a_flooded_node']} (quota {figures['per_ip_quota']})", size)]
    rows += tally_rows("poisoning", "lookups afterwards", figures["lookups"])
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=500, help="swarm size of the scenario figures")
    parser.add_argument("--full", action="store_true", help="benchmarks at their default sizes")
    parser.add_argument("--skip", default="", help="comma-separated benchmark names to leave out")
    args = parser.parse_args(argv)
    skip = {name for name in args.skip.split(",") if name}
    rows = []
    for script in sorted((ROOT / "bench").glob("*.py")):
        if script.name != "report.py" and script.stem not in skip:
            rows += run_benchmark(script, args.full)
    if "scenarios" not in skip:
        rows += scenario_rows(args.nodes)
    print("| benchmark / scenario | figure | value | run |")
    print("| --- | --- | --- | --- |")
    for name, figure, value, detail in rows:
        print(f"| {name} | {figure} | {value} | {detail} |")


if __name__ == "__main__":
    main()
