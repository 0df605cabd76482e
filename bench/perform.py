"""Where one no-op run's time goes once its cluster claimed it: the worker's `perform_claimed`
and the completer's batched, fenced success write, in one process.

    python bench/perform.py [--n 2000] [--database-url postgres://postgres@127.0.0.1:5432/aktina_perform]

Two passes over N runs each, dispatched and claimed (as the cluster's dequeue does) before the
pass, then performed one by one through the worker's entry point, successes written 100 per
statement as the completer does. The first pass is timed with no
profiler running (`per_run_us`); the second runs under cProfile and gives the split: the share
inside the database driver's `execute` (`database_us_per_run`, profiled time) and the top of the
profile. Profiled times carry the profiler's overhead: compare them with each other, not with
`per_run_us`. Last line is JSON (keys in JSON_KEYS).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import emit, setup_django

JSON_KEYS = ("per_run_us", "profiled_per_run_us", "database_us_per_run")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    setup_django(args.database_url, "perform", JOBS_IMPORT="bench.tasks")

    from django.db import connection, transaction

    from aktina.jobs.lifecycle import runs_claim, runs_complete
    from aktina.jobs.processes import process_register
    from aktina.jobs.worker import perform_claimed
    from bench.tasks import BenchNoopJob

    holder = process_register(
        kind="cluster", cluster="bench", queues=[BenchNoopJob.queue], boot="bench"
    )

    def claimed_batch(offset: int) -> list:
        """Dispatch and claim n runs as a cluster's dequeue does (outside the clock)."""
        with transaction.atomic():
            for i in range(args.n):
                BenchNoopJob.dispatch(offset + i)
        claimed = []
        while len(claimed) < args.n:
            claimed += runs_claim(
                queues=[BenchNoopJob.queue], limit=100, holder_id=holder.pk, worker="bench"
            )
        return claimed

    def work(batch: list) -> None:
        """What the cluster does per run after its claim: the worker's perform_claimed, then
        the completer's fenced write of the successes, 100 per statement."""
        done = []
        for run in batch:
            perform_claimed(run)
            done.append(run)
            if len(done) == 100:
                runs_complete(runs=done)
                done = []
        if done:
            runs_complete(runs=done)

    # Pass 1: the clock only.
    batch = claimed_batch(0)
    started = time.perf_counter()
    work(batch)
    per_run_us = (time.perf_counter() - started) / args.n * 1e6

    # Pass 2: the profiler, on a fresh batch.
    batch = claimed_batch(args.n)
    profile = cProfile.Profile()
    started = time.perf_counter()
    profile.enable()
    work(batch)
    profile.disable()
    profiled_us = (time.perf_counter() - started) / args.n * 1e6

    stats = pstats.Stats(profile)
    # Time inside the driver's execute: the statement's round trip, commit included.
    in_db = sum(
        entry[3]
        for func, entry in stats.stats.items()
        if func[2] == "execute" and ("psycopg" in func[0] or "sqlite3" in func[0])
    )
    print(
        f"database: {connection.vendor}; {args.n} runs per pass; perform {per_run_us:.0f} us/run "
        f"(no profiler); under cProfile {profiled_us:.0f} us/run, "
        f"{in_db / args.n * 1e6:.0f} of it in the driver's execute"
    )
    stats.sort_stats("cumulative").print_stats(25)
    emit(
        {
            "per_run_us": round(per_run_us, 1),
            "profiled_per_run_us": round(profiled_us, 1),
            "database_us_per_run": round(in_db / args.n * 1e6, 1),
        },
        JSON_KEYS,
    )


if __name__ == "__main__":
    main()
