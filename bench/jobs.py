"""Ledger vs raw django-q2: N no-op jobs each way, same cluster settings, same database, one run.

    python bench/jobs.py [--n 2000] [--rounds 3] [--database-url postgres://postgres@127.0.0.1:5432/aktina_bench]

Both systems are timed the same way: the N jobs are enqueued with no cluster running, then the
clock starts when `manage.py qcluster` is started and stops when the last job has finished.
Raw rounds run django-q2's stock ORM broker (bench/raw_settings.py); ledger rounds the ledger
broker. Rounds alternate; figures are medians.

Last line is JSON: ledger_jobs_per_s, raw_jobs_per_s, ratio, steady rates (10-90 % of the
drain), first_job_s (cluster start to first finished job), dispatch_us_per_job, wait p50/p95,
delayed_start_late_p50/p95/max_ms.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Cluster, median, percentile, setup_django, wait_for


def drain(env: dict[str, str], remaining, n: int) -> dict[str, float]:
    """Start a cluster, sample `remaining()` until it is 0; rates from the cluster's start."""
    samples = []
    started = time.perf_counter()
    cluster = Cluster(env)
    try:
        while True:
            left = remaining()
            now = time.perf_counter() - started
            samples.append((now, left))
            if left == 0:
                break
            if now > 600:
                raise TimeoutError(f"{left} of {n} jobs left after 600 s")
            time.sleep(0.05)
    finally:
        cluster.stop()
    total = samples[-1][0]

    def reached(done: int) -> float:
        return next(t for t, left in samples if n - left >= done)

    first, p10, p90 = reached(1), reached(n // 10), reached(n * 9 // 10)
    return {
        "jobs_per_s": n / total,
        "steady_jobs_per_s": (n * 8 // 10) / (p90 - p10) if p90 > p10 else float("nan"),
        "first_job_s": first,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; medians")
    args = parser.parse_args()
    env = setup_django(
        args.database_url, "jobs", JOBS_IMPORT="bench.tasks", Q_WORKERS=str(args.workers)
    )
    raw_env = {**env, "DJANGO_SETTINGS_MODULE": "bench.raw_settings"}

    from django.db import connection, transaction
    from django_q.brokers.orm import ORM
    from django_q.models import OrmQ, Schedule
    from django_q.tasks import async_task

    from aktina.jobs.models import JobRun
    from bench.tasks import BenchNoopJob

    # The project's schedules (sweeper, analytics) would add work to either system's drain.
    Schedule.objects.all().delete()
    stock_broker = ORM(list_key="aktina")
    runs = JobRun.objects.filter(job_name=BenchNoopJob.job_name)
    active = runs.filter(status__in=JobRun.ACTIVE)
    raw, ledger, dispatch_us, waits = [], [], [], []
    for _ in range(args.rounds):
        OrmQ.objects.all().delete()
        with transaction.atomic():
            for i in range(args.n):
                async_task("bench.tasks.noop", i, broker=stock_broker)
        raw.append(drain(raw_env, lambda: OrmQ.objects.count(), args.n))

        JobRun.objects.all().delete()
        started = time.perf_counter()
        with transaction.atomic():
            for i in range(args.n):
                BenchNoopJob.dispatch(i)
        dispatch_us.append((time.perf_counter() - started) / args.n * 1e6)
        ledger.append(drain(env, lambda: active.count(), args.n))
        assert runs.filter(status="succeeded").count() == args.n
        # Dispatch-to-start: these include the cluster's start-up (runs were queued before it).
        waits += [r.wait_seconds * 1000 for r in runs]

    # Delays: how late a delayed run starts after it became due, warm cluster, defaults.
    JobRun.objects.all().delete()
    cluster = Cluster(env)
    try:
        warm = BenchNoopJob.dispatch(-1)
        wait_for(lambda: not active.filter(pk=warm.pk).exists(), timeout=120)
        delayed = [BenchNoopJob(i).delay(1 + i * 0.37).dispatch() for i in range(40)]
        wait_for(lambda: not active.exists(), timeout=120)
    finally:
        cluster.stop()
    late = [r.wait_seconds * 1000 for r in JobRun.objects.filter(pk__in=[d.pk for d in delayed])]

    def med(rounds, key):
        return median([r[key] for r in rounds])

    print(
        f"database: {connection.vendor}, n={args.n}, workers={args.workers}, rounds={args.rounds}"
    )
    print("from qcluster start, jobs enqueued before: jobs/s (steady 10-90 %), first job")
    for label, rounds in (("raw django-q2", raw), ("ledger", ledger)):
        figures = ", ".join(
            f"{r['jobs_per_s']:.0f} ({r['steady_jobs_per_s']:.0f}) {r['first_job_s']:.2f}s"
            for r in rounds
        )
        print(f"{label:14}: {figures}")
    print(f"delayed-run lateness ms: p50 {median(late):.0f}, p95 {percentile(late, 95):.0f}")
    result = {
        "ledger_jobs_per_s": round(med(ledger, "jobs_per_s"), 1),
        "raw_jobs_per_s": round(med(raw, "jobs_per_s"), 1),
        "ratio": round(med(ledger, "jobs_per_s") / med(raw, "jobs_per_s"), 3),
        "ledger_steady_jobs_per_s": round(med(ledger, "steady_jobs_per_s"), 1),
        "raw_steady_jobs_per_s": round(med(raw, "steady_jobs_per_s"), 1),
        "steady_ratio": round(med(ledger, "steady_jobs_per_s") / med(raw, "steady_jobs_per_s"), 3),
        "ledger_first_job_s": round(med(ledger, "first_job_s"), 2),
        "raw_first_job_s": round(med(raw, "first_job_s"), 2),
        "dispatch_us_per_job": round(median(dispatch_us), 1),
        "wait_p50_ms": round(percentile(waits, 50), 1),
        "wait_p95_ms": round(percentile(waits, 95), 1),
        "delayed_start_late_p50_ms": round(median(late), 1),
        "delayed_start_late_p95_ms": round(percentile(late, 95), 1),
        "delayed_start_late_max_ms": round(max(late), 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
