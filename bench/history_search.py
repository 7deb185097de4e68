"""History search: the FTS5 index (kadchat.history.History.search) vs. a LIKE scan.

Both run in the same process on the same history file of N messages (random
words from a small vocabulary, 40 conversations), for the same queries; the
scan is what searching the messages table without an index costs. Also: how
long opening a schema-1 file of that size takes (the index is built once).
Prints one JSON object.

    python3 bench/history_search.py [--messages N] [--queries Q]
"""

import argparse
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kadchat.history import History  # noqa: E402

WORDS = [f"{a}{b}" for a in ("ka", "lo", "mi", "ne", "su", "ta", "vo", "ri") for b in
         ("bar", "cen", "dol", "fim", "gux", "hap", "jor", "kel", "lum", "mop", "nix", "pel")]
PEERS = [bytes([i]) * 32 for i in range(40)]


def fill(history, count, rng):
    db = history._db
    rows = []
    for i in range(count):
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 20)))
        rows.append((rng.choice(PEERS), i.to_bytes(16, "big"), i % 2, i, text, float(i), "received"))
    with db:
        db.executemany("INSERT INTO messages (peer, id, outgoing, seq, text, timestamp, state)"
                       " VALUES (?, ?, ?, ?, ?, ?, ?)", rows)


def timed(call, queries):
    times = []
    for query in queries:
        started = time.perf_counter()
        call(query)
        times.append((time.perf_counter() - started) * 1000)
    return {"median_ms": round(statistics.median(times), 3), "max_ms": round(max(times), 3)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=50)
    args = parser.parse_args()
    rng = random.Random(7)
    queries = [" ".join(rng.sample(WORDS, 2)) for _ in range(args.queries)]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "h.sqlite3"
        history = History(path)
        fill(history, args.messages, rng)

        def scan(query):
            words = query.split()
            where = " AND ".join("text LIKE ?" for _ in words)
            return history._db.execute(
                f"SELECT id FROM messages WHERE {where} ORDER BY timestamp DESC LIMIT 50",
                [f"%{w}%" for w in words]).fetchall()

        result = {
            "messages": args.messages, "queries": args.queries,
            "fts5_search": timed(lambda q: history.search(q, PEERS, 50), queries),
            "baseline_like_scan": timed(scan, queries),
        }
        history.close()
        db = sqlite3.connect(path)  # back to schema 1: no index, as an old file is
        db.executescript("DROP TABLE messages_text; DROP TRIGGER IF EXISTS messages_text_insert;"
                         " DROP TRIGGER IF EXISTS messages_text_delete;"
                         " DROP TRIGGER IF EXISTS messages_text_update; PRAGMA user_version=1;")
        db.close()
        started = time.perf_counter()
        History(path).close()
        result["schema_1_open_with_index_build_ms"] = round((time.perf_counter() - started) * 1000, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
