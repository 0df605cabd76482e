"""Ledger vs raw django-q2: N no-op jobs each way, same cluster settings, same database, one run;
then how fast an idle cluster picks a run up, delayed-run lateness and bulk dispatch.

    python bench/jobs.py [--n 2000] [--rounds 3] [--pickups 60] [--bulk 10000]
                         [--database-url postgres://postgres@127.0.0.1:5432/aktina_bench]

Drain: the N jobs are enqueued with no cluster running, then the clock starts when
`manage.py qcluster` is started and stops when the last job has finished. Raw rounds run
django-q2's stock ORM broker (bench/raw_settings.py), ledger rounds the ledger broker. Within a
round the order alternates (raw first in odd rounds, ledger first in even ones), so neither
always meets a warmer machine. Figures are medians over rounds; `ratio` = ledger ÷ raw.

Pickup: one run dispatched at a time to an idle, warm cluster (the last run finished, then a
random pause of up to 0.5 s so the sample lands anywhere in the cluster's poll cycle), `--pickups`
samples: from the dispatching transaction's commit (this process's clock) to the run's
`started_at` (the database's clock: run the driver on the database's host, or with clocks in sync).

Bulk dispatch: `--bulk` runs through `aktina.jobs.dispatch_many` in one transaction (commit
included), if this build has it; otherwise the figure is null and the script says so.

Last line is JSON (keys in JSON_KEYS).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Cluster, emit, median, percentile, setup_django, wait_for

JSON_KEYS = (
    "ledger_jobs_per_s",
    "raw_jobs_per_s",
    "ratio",
    "ledger_steady_jobs_per_s",
    "raw_steady_jobs_per_s",
    "steady_ratio",
    "ledger_first_job_s",
    "raw_first_job_s",
    "dispatch_us_per_job",
    "wait_p50_ms",
    "wait_p95_ms",
    "pickup_p50_ms",
    "pickup_p95_ms",
    "pickup_samples",
    "delayed_start_late_p50_ms",
    "delayed_start_late_p95_ms",
    "delayed_start_late_max_ms",
    "bulk_dispatch_jobs_per_s",
)


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


def pickups(count: int, active) -> list[float]:
    """Milliseconds from a dispatch's commit to its run's start, one run at a time."""
    from django.db import transaction

    from aktina.jobs.models import JobRun
    from bench.tasks import BenchNoopJob

    rng = random.Random(5)
    out = []
    for i in range(count):
        time.sleep(rng.uniform(0, 0.5))
        with transaction.atomic():
            run = BenchNoopJob.dispatch(10_000 + i)
        committed = time.time()
        wait_for(lambda pk=run.pk: not active.filter(pk=pk).exists(), timeout=60, interval=0.01)
        started_at = JobRun.objects.values_list("started_at", flat=True).get(pk=run.pk)
        out.append((started_at.timestamp() - committed) * 1000)
    return out


def bulk_dispatch(n: int) -> float | None:
    """Runs per second through `dispatch_many`, one transaction, commit included."""
    from django.db import transaction

    from bench.tasks import BenchNoopJob

    try:
        from aktina.jobs import dispatch_many
    except ImportError:
        print("bulk dispatch: aktina.jobs.dispatch_many is not in this build; figure unavailable")
        return None
    jobs = [BenchNoopJob(i) for i in range(n)]
    started = time.perf_counter()
    with transaction.atomic():
        dispatch_many(jobs)
    return n / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; medians")
    parser.add_argument("--pickups", type=int, default=60, help="pickup samples")
    parser.add_argument("--bulk", type=int, default=10_000, help="runs for dispatch_many")
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

    def raw_round() -> None:
        OrmQ.objects.all().delete()
        with transaction.atomic():
            for i in range(args.n):
                async_task("bench.tasks.noop", i, broker=stock_broker)
        raw.append(drain(raw_env, lambda: OrmQ.objects.count(), args.n))

    def ledger_round() -> None:
        JobRun.objects.all().delete()
        started = time.perf_counter()
        with transaction.atomic():
            for i in range(args.n):
                BenchNoopJob.dispatch(i)
        dispatch_us.append((time.perf_counter() - started) / args.n * 1e6)
        ledger.append(drain(env, lambda: active.count(), args.n))
        assert runs.filter(status="succeeded").count() == args.n
        # Dispatch-to-start: these include the cluster's start-up (runs were queued before it).
        waits.extend(r.wait_seconds * 1000 for r in runs)

    for r in range(args.rounds):
        for one_round in (raw_round, ledger_round) if r % 2 == 0 else (ledger_round, raw_round):
            one_round()

    # An idle warm cluster: pickup after a dispatch commits, then lateness of delayed runs.
    JobRun.objects.all().delete()
    cluster = Cluster(env)
    try:
        warm = BenchNoopJob.dispatch(-1)
        wait_for(lambda: not active.filter(pk=warm.pk).exists(), timeout=120)
        picked = pickups(args.pickups, active)
        delayed = [BenchNoopJob(i).delay(1 + i * 0.37).dispatch() for i in range(40)]
        wait_for(lambda: not active.exists(), timeout=120)
    finally:
        cluster.stop()
    late = [r.wait_seconds * 1000 for r in JobRun.objects.filter(pk__in=[d.pk for d in delayed])]
    JobRun.objects.all().delete()
    bulk = bulk_dispatch(args.bulk) if args.bulk else None

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
    ratio = med(ledger, "jobs_per_s") / med(raw, "jobs_per_s")
    print(f"ledger ÷ raw django-q2: {ratio:.3f} (rounds: " + ", ".join(
        f"{a['jobs_per_s'] / b['jobs_per_s']:.2f}" for a, b in zip(ledger, raw, strict=True)
    ) + ")")  # fmt: skip
    print(
        f"pickup (idle warm cluster, commit -> started) ms: p50 {percentile(picked, 50):.0f}, "
        f"p95 {percentile(picked, 95):.0f}, {len(picked)} samples"
    )
    print(f"delayed-run lateness ms: p50 {median(late):.0f}, p95 {percentile(late, 95):.0f}")
    if bulk is not None:
        print(f"bulk dispatch: {args.bulk} runs through dispatch_many, {bulk:.0f} runs/s")
    emit(
        {
            "ledger_jobs_per_s": round(med(ledger, "jobs_per_s"), 1),
            "raw_jobs_per_s": round(med(raw, "jobs_per_s"), 1),
            "ratio": round(ratio, 3),
            "ledger_steady_jobs_per_s": round(med(ledger, "steady_jobs_per_s"), 1),
            "raw_steady_jobs_per_s": round(med(raw, "steady_jobs_per_s"), 1),
            "steady_ratio": round(
                med(ledger, "steady_jobs_per_s") / med(raw, "steady_jobs_per_s"), 3
            ),
            "ledger_first_job_s": round(med(ledger, "first_job_s"), 2),
            "raw_first_job_s": round(med(raw, "first_job_s"), 2),
            "dispatch_us_per_job": round(median(dispatch_us), 1),
            "wait_p50_ms": percentile(waits, 50),
            "wait_p95_ms": percentile(waits, 95),
            "pickup_p50_ms": percentile(picked, 50),
            "pickup_p95_ms": percentile(picked, 95),
            "pickup_samples": len(picked),
            "delayed_start_late_p50_ms": round(median(late), 1),
            "delayed_start_late_p95_ms": percentile(late, 95),
            "delayed_start_late_max_ms": round(max(late), 1),
            "bulk_dispatch_jobs_per_s": None if bulk is None else round(bulk, 1),
        },
        JSON_KEYS,
    )


if __name__ == "__main__":
    main()
