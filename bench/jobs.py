"""Ledger vs raw django-q2: N no-op jobs each way, same cluster, same database, one run.

    python bench/jobs.py [--n 2000] [--database-url postgres://postgres@127.0.0.1:5432/aktina_bench]

Last line is JSON: ledger_jobs_per_s, raw_jobs_per_s, ratio, dispatch_us_per_job, wait p50/p95.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Cluster, median, percentile, setup_django, wait_for


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds; medians")
    args = parser.parse_args()
    env = setup_django(
        args.database_url, "jobs", JOBS_IMPORT="bench.tasks", Q_WORKERS=str(args.workers)
    )

    from django.db import transaction
    from django_q.models import OrmQ
    from django_q.tasks import async_task

    from aktina.jobs.models import JobRun
    from bench.tasks import BenchNoopJob

    cluster = Cluster(env)
    time.sleep(4)  # let the cluster spawn its workers before the clock starts
    raw_rates, ledger_rates, dispatch_us, waits = [], [], [], []
    try:
        for _ in range(args.rounds):
            with transaction.atomic():
                for i in range(args.n):
                    async_task("bench.tasks.noop", i)
            raw_s = wait_for(lambda: not OrmQ.objects.exists(), timeout=600)
            raw_rates.append(args.n / raw_s)

            JobRun.objects.all().delete()
            started = time.perf_counter()
            with transaction.atomic():
                for i in range(args.n):
                    BenchNoopJob.dispatch(i)
            dispatch_us.append((time.perf_counter() - started) / args.n * 1e6)
            # The clock starts when the messages are visible, as for the raw tasks.
            ledger_s = wait_for(
                lambda: not JobRun.objects.filter(status__in=JobRun.ACTIVE).exists(), timeout=600
            )
            ledger_rates.append(args.n / ledger_s)
            assert JobRun.objects.filter(status="succeeded").count() == args.n
            waits += [r.wait_seconds * 1000 for r in JobRun.objects.all()]
        # Delays: how late a delayed run starts after it became due, idle cluster, defaults.
        JobRun.objects.all().delete()
        delayed = [BenchNoopJob(i).delay(2 + i * 0.7).dispatch() for i in range(20)]
        wait_for(lambda: not JobRun.objects.filter(status__in=JobRun.ACTIVE).exists(), timeout=120)
        late = [
            r.wait_seconds * 1000 for r in JobRun.objects.filter(pk__in=[d.pk for d in delayed])
        ]
    finally:
        cluster.stop()

    from django.db import connection

    raw, ledger = median(raw_rates), median(ledger_rates)
    print(
        f"database: {connection.vendor}, n={args.n}, workers={args.workers}, rounds={args.rounds}"
    )
    print(f"raw django-q2 : {', '.join(f'{r:.0f}' for r in raw_rates)} tasks/s")
    print(f"ledger        : {', '.join(f'{r:.0f}' for r in ledger_rates)} jobs/s")
    result = {
        "ledger_jobs_per_s": round(ledger, 1),
        "raw_jobs_per_s": round(raw, 1),
        "ratio": round(ledger / raw, 3),
        "dispatch_us_per_job": round(median(dispatch_us), 1),
        "wait_p50_ms": round(percentile(waits, 50), 1),
        "wait_p95_ms": round(percentile(waits, 95), 1),
        "delayed_start_late_p50_ms": round(median(late), 1),
        "delayed_start_late_max_ms": round(max(late), 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
