"""Where one no-op run's time goes in the worker: `perform` in one process, under cProfile.

    python bench/perform.py [--n 2000] [--database-url postgres://postgres@127.0.0.1:5432/aktina_perform]

N runs are dispatched and delivered (as the broker would), then performed one by one through
the worker's entry point. Prints microseconds per run, the share spent waiting on the
database, and the top of the profile. Last line is JSON.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import setup_django


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    setup_django(args.database_url, "perform", JOBS_IMPORT="bench.tasks")

    from django.db import connection, transaction

    from aktina.jobs.broker import runs_deliver
    from aktina.jobs.worker import perform
    from bench.tasks import BenchNoopJob

    with transaction.atomic():
        for i in range(args.n):
            BenchNoopJob.dispatch(i)
    delivered = []
    while len(delivered) < args.n:
        delivered += runs_deliver(queues=[BenchNoopJob.queue], limit=10)

    profile = cProfile.Profile()
    started = time.perf_counter()
    profile.enable()
    for run_id, timeout in delivered:
        perform(run_id, timeout)
    profile.disable()
    total = time.perf_counter() - started

    stats = pstats.Stats(profile)
    # Time inside the driver's execute: the statement's round trip, commit included.
    in_db = sum(
        entry[3]
        for func, entry in stats.stats.items()
        if func[2] == "execute" and ("psycopg" in func[0] or "sqlite3" in func[0])
    )
    per_run_us = total / args.n * 1e6
    print(f"database: {connection.vendor}; {args.n} runs; perform {per_run_us:.0f} us/run")
    stats.sort_stats("cumulative").print_stats(25)
    print(
        json.dumps(
            {
                "per_run_us": round(per_run_us, 1),
                "database_us_per_run": round(in_db / args.n * 1e6, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
