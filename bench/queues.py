"""Queue health and the operator views with a big ledger: cost at 10 000 runs vs at `--runs`.

    python bench/queues.py [--runs 1000000] [--small 10000] [--repeats 5] [--explain]
                           [--database-url postgres://postgres@127.0.0.1:5432/aktina_bench_queues]

Fills `jobs_jobrun` with bulk SQL (PostgreSQL: `INSERT ... SELECT ... FROM generate_series`;
SQLite: a recursive CTE), in chunks: a week of traffic over every queue in `JOBS_QUEUES`,
mostly succeeded runs spread evenly over the last 7 days (ids follow time, as in a real
ledger), some failed (with `last_error` and their attempt log), some cancelled, a backlog of
due queued runs, delayed runs, a few running ones. Then VACUUM ANALYZE / ANALYZE.

At `--small` runs and again at `--runs` (the ledger is emptied and refilled with the same mix,
so only the density differs) it times, median of `--repeats` after one warm-up:
`queue_stats()`, `queue_timeseries()`, `aktina.jobs.console.health.queue_health()` (it caches
nothing: each call rebuilds), and as a superuser through `django.test.Client` the page
`/dashboard/queues/`, the admin changelist `/admin/jobs/jobrun/`, the same filtered
`?status__exact=failed`, and the newest failed run's admin change page. It counts the SQL
queries of each page at both sizes (they must be equal: no query per row). `--explain` prints
EXPLAIN ANALYZE of each page's slowest query at the large size.

Last line is JSON (keys in JSON_KEYS): runs, queue_page_ms_small/large, queue_page_ratio,
admin_changelist_ms_large, admin_failed_ms_large, queue_stats_ms_large, queries_per_page, plus
every timing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import emit, median, setup_django

JSON_KEYS = (
    "runs",
    "queue_page_ms_small",
    "queue_page_ms_large",
    "queue_page_ratio",
    "admin_changelist_ms_large",
    "admin_failed_ms_large",
    "queue_stats_ms_large",
    "queries_per_page",
    "queries_equal",
    "database",
    "small_runs",
    "ms_small",
    "ms_large",
)

# (job, queue, tries, timeout, backoff, weight). Urgent orders send their workflow jobs to
# `urgent` (orders.jobs.for_order); `default` gets jobs dispatched with on_queue("default").
JOB_MIX = [
    ("orders.jobs.ProcessOrderApprovalJob", "order-approval", 3, 60, [10, 60], 140),
    ("orders.jobs.ProcessOrderReminderJob", "order-approval", 3, 60, [60, 300], 30),
    ("orders.jobs.ProcessOrderFulfillmentJob", "order-processing", 3, 300, [60, 180, 600], 140),
    ("orders.jobs.GenerateShippingLabelJob", "order-processing", 5, 60, [30, 120, 600], 120),
    ("orders.jobs.ProcessBulkOrdersJob", "order-processing", 3, 300, [30, 120], 10),
    ("orders.jobs.SendOrderCompletionNotificationJob", "notifications", 5, 60, [10, 60, 300], 200),
    ("analytics.jobs.GenerateOrderAnalyticsJob", "analytics", 3, 120, [5, 30], 260),
    ("orders.jobs.ProcessOrderApprovalJob", "urgent", 3, 60, [10, 60], 20),
    ("orders.jobs.ProcessOrderFulfillmentJob", "urgent", 3, 300, [60, 180, 600], 30),
    ("orders.jobs.GenerateShippingLabelJob", "urgent", 5, 60, [30, 120, 600], 20),
    ("ml.jobs.RefreshMLPredictions", "ml-processing", 2, 600, [300], 2),
    ("orders.jobs.SendOrderCompletionNotificationJob", "default", 5, 60, [10, 60, 300], 28),
]
# Status mix per 100 000 runs; "delayed" is a queued run whose available_at is in the future.
STATUS_MIX = [
    ("running", 20),
    ("queued", 500),
    ("delayed", 300),
    ("failed", 2000),
    ("cancelled", 300),
    ("succeeded", 100_000 - 20 - 500 - 300 - 2000 - 300),
]
ERRORS = [
    "RuntimeError: carrier API answered 503 Service Unavailable",
    "TimeoutError: warehouse service did not answer within 30 s",
    "JobTimedOut: the attempt exceeded its 300 s timeout or its worker was lost",
    "OperationalError: could not serialize access due to concurrent update",
]
TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "/app/aktina/jobs/worker.py", line 97, in perform\n'
    "    job.handle()\n"
    '  File "/app/orders/jobs.py", line 112, in handle\n'
    "    fulfillment_start(order=self.order)\n"
)
# Every run's argument is an order reference, as the workflow's jobs dispatch it.
PAYLOAD = (
    """'{"args": [{"__model__": "orders.order", "pk": ' || (i % 250000 + 1) || '}], """
    """"kwargs": {}}'"""
)
WEEK = 7 * 86400
# Weyl-style streams: (i * a + b) mod m / m, one (a, m) per independent-looking value.
STREAMS = [
    (2654435761, 1_000_003),
    (2246822519, 999_983),
    (3266489917, 1_000_033),
    (668265263, 999_979),
    (374761393, 1_000_037),
    (1597334677, 999_961),
]
PAGES = [
    ("queue page", "/dashboard/queues/"),
    ("admin changelist", "/admin/jobs/jobrun/"),
    ("admin failed", "/admin/jobs/jobrun/?status__exact=failed"),
    ("admin change", None),  # the newest failed run; filled in per size
]


class Dialect:
    def __init__(self, vendor: str, now: dt.datetime):
        self.pg = vendor == "postgresql"
        self.now = now

    def uniform(self, k: int) -> str:
        a, m = STREAMS[k]
        x = f"((i * {a} + {k * 7919}) % {m})"
        return f"({x}::float8 / {m})" if self.pg else f"({x} * 1.0 / {m})"

    def bucket(self, k: int, size: int) -> str:
        """An integer in [0, size) from stream k (integer division in both databases)."""
        a, m = STREAMS[k]
        return f"(((i * {a} + {k * 7919}) % {m}) * {size} / {m})"

    def series(self, first: int, last: int) -> str:
        if self.pg:
            return f"series(i) AS (SELECT generate_series({first}::bigint, {last}::bigint))"
        return f"series(i) AS (SELECT {first} UNION ALL SELECT i + 1 FROM series WHERE i < {last})"

    def ts(self, offset: str) -> str:
        """`now + offset seconds` as a value of a DateTimeField column."""
        if self.pg:
            return f"(TIMESTAMPTZ '{self.now.isoformat()}' + ({offset}) * INTERVAL '1 second')"
        julian = self.now.timestamp() / 86400 + 2440587.5
        return f"strftime('%Y-%m-%d %H:%M:%f', {julian!r} + ({offset}) / 86400.0)"

    def json(self, text: str) -> str:
        return f"({text})::jsonb" if self.pg else text

    def boolean(self, condition: str) -> str:
        return f"({condition})" if self.pg else f"(CASE WHEN {condition} THEN 1 ELSE 0 END)"


def _cases(value: str, table: list[tuple], column: int, weight: int, quote=True) -> str:
    """CASE over cumulative weights: row `value` in [0, total) picks table[k][column]."""
    parts, upper = [], 0
    for row in table:
        upper += row[weight]
        shown = f"'{row[column]}'" if quote else str(row[column])
        parts.append(f"WHEN {value} < {upper} THEN {shown}")
    return "CASE " + " ".join(parts) + " END"


def fill_sql(d: Dialect, first: int, last: int, total: int) -> str:
    """One INSERT ... SELECT of runs first..last (of `total`) into the ledger."""
    jobs_total = sum(j[5] for j in JOB_MIX)
    jobs = ", ".join(
        f"({k}, '{name}', '{queue}', {tries}, {timeout}, '{json.dumps([float(b) for b in bo])}')"
        for k, (name, queue, tries, timeout, bo, _) in enumerate(JOB_MIX)
    )
    job_index = _cases("jb", [(k, *j) for k, j in enumerate(JOB_MIX)], 0, 6, quote=False)
    errors = " ".join(f"WHEN {k} THEN '{e}'" for k, e in enumerate(ERRORS))
    created = (
        "CASE kind WHEN 'running' THEN -(ua * 300) WHEN 'queued' THEN -(60 + ua * 1800) "
        "WHEN 'delayed' THEN -(ua * 3600) "
        f"ELSE -(120 + (1.0 - i * 1.0 / {total}) * {WEEK - 240} + ua * 60) END"
    )
    sql = f"""
    WITH RECURSIVE
    jobs(k, job_name, queue, tries, timeout, backoff) AS (VALUES {jobs}),
    {d.series(first, last)},
    base AS (
        SELECT i, {d.uniform(0)} AS ua, {d.uniform(1)} AS ub, {d.uniform(2)} AS uc,
               {d.bucket(3, 100_000)} AS sb, {d.bucket(4, jobs_total)} AS jb,
               {d.bucket(5, 1000)} AS xb
        FROM series
    ),
    typed AS (
        SELECT base.*, {_cases("sb", STATUS_MIX, 0, 1)} AS kind, {job_index} AS k FROM base
    ),
    timed AS (
        SELECT typed.*, jobs.job_name, jobs.queue, jobs.tries, jobs.timeout, jobs.backoff,
               {created} AS c_off,
               ub * ub * ub * 4 + 0.005 AS wait_s,
               0.02 + uc * uc * 2.5 AS run_s
        FROM typed JOIN jobs ON jobs.k = typed.k
    ),
    runs AS (
        SELECT timed.*,
               CASE WHEN kind = 'delayed' THEN 60 + ub * 21600 ELSE c_off END AS a_off,
               CASE kind WHEN 'failed' THEN tries WHEN 'running' THEN 1 WHEN 'succeeded'
                    THEN (CASE WHEN xb < 30 THEN 2 ELSE 1 END) ELSE 0 END AS n_attempts
        FROM timed
    )
    INSERT INTO jobs_jobrun (
        job_name, queue, status, payload, attempts, tries, timeout, backoff, retry_until,
        unique_key, unique_active, unique_until, unique_until_processing, chain, chain_catch,
        batch_id, created_at, available_at, delivered_until, started_at, finished_at,
        lease_expires_at, worker, last_error
    )
    SELECT
        job_name, queue,
        CASE kind WHEN 'delayed' THEN 'queued' ELSE kind END,
        {d.json(PAYLOAD)},
        n_attempts, tries, timeout, {d.json("backoff")}, NULL,
        CASE WHEN queue = 'analytics' THEN 'analytics-order:' || i END,
        {d.boolean("queue = 'analytics' AND kind IN ('queued', 'delayed')")},
        NULL,
        {d.boolean("queue = 'analytics'")},
        {d.json("'[]'")}, NULL, NULL,
        {d.ts("c_off")},
        {d.ts("a_off")},
        NULL,
        CASE WHEN kind IN ('running', 'succeeded', 'failed') THEN {d.ts("a_off + wait_s")} END,
        CASE WHEN kind IN ('succeeded', 'failed') THEN {d.ts("a_off + wait_s + run_s")}
             WHEN kind = 'cancelled' THEN {d.ts("a_off + wait_s")} END,
        CASE WHEN kind = 'running' THEN {d.ts("a_off + wait_s + timeout + 30")} END,
        CASE WHEN kind IN ('running', 'succeeded', 'failed')
             THEN 'aktina-web-1:' || (4100 + i % 6) ELSE '' END,
        CASE WHEN kind = 'failed' THEN (CASE xb % {len(ERRORS)} {errors} END)
             WHEN kind = 'cancelled' THEN 'cancelled by an operator' ELSE '' END
    FROM runs
    ORDER BY i
    """
    return sql


def attempts_sql(d: Dialect) -> str:
    """Attempt log rows: every attempt of a failed run, the first of a retried success."""
    numbers = ", ".join(f"({n})" for n in range(1, 6))
    return f"""
    WITH numbers(n) AS (VALUES {numbers})
    INSERT INTO jobs_jobattempt (run_id, number, outcome, started_at, finished_at, worker,
                                 error, traceback)
    SELECT r.id, numbers.n,
           CASE WHEN r.status = 'failed' AND numbers.n = r.attempts THEN 'failed' ELSE 'error' END,
           r.started_at, r.finished_at, r.worker,
           CASE WHEN r.status = 'failed' THEN r.last_error
                ELSE 'RuntimeError: carrier API answered 503 Service Unavailable' END,
           '{TRACEBACK}' || 'RuntimeError: attempt ' || numbers.n
    FROM jobs_jobrun r JOIN numbers
      ON (r.status = 'failed' AND numbers.n <= r.attempts)
      OR (r.status = 'succeeded' AND numbers.n < r.attempts)
    """


def fill(total: int) -> float:
    """Empty the ledger and fill it with `total` runs; seconds taken."""
    from django.db import connection, transaction
    from django.utils import timezone

    started = time.perf_counter()
    d = Dialect(connection.vendor, timezone.now())
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM jobs_jobattempt")
        cursor.execute("DELETE FROM jobs_jobrun")
    chunk = 250_000 if d.pg else 100_000
    for first in range(1, total + 1, chunk):
        last = min(total, first + chunk - 1)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(fill_sql(d, first, last, total))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(attempts_sql(d))
    with connection.cursor() as cursor:
        if d.pg:
            # A live ledger is autovacuumed; a bulk load has no visibility map yet, which would
            # make index-only scans look worse than in production.
            cursor.execute("VACUUM (ANALYZE) jobs_jobrun")
            cursor.execute("VACUUM (ANALYZE) jobs_jobattempt")
        else:
            cursor.execute("ANALYZE")
    return time.perf_counter() - started


def ledger_summary() -> dict:
    from django.db.models import Count

    from aktina.jobs.models import JobAttempt, JobRun

    counts = dict(JobRun.objects.values_list("status").annotate(n=Count("id")).order_by())
    counts["attempts"] = JobAttempt.objects.count()
    return counts


def _timed(call, repeats: int) -> float:
    call()  # warm-up: connection, statement plans, template loading
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    return median(samples)


def measure(client, repeats: int, explain: bool) -> tuple[dict, dict]:
    """Median ms per selector and page, and SQL queries per page."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from aktina.jobs.console.health import queue_health
    from aktina.jobs.models import JobRun
    from aktina.jobs.selectors import queue_stats, queue_timeseries

    timings = {
        "queue_stats": _timed(queue_stats, repeats),
        "queue_timeseries": _timed(queue_timeseries, repeats),
        "queue_health": _timed(queue_health, repeats),
    }
    failed = JobRun.objects.filter(status=JobRun.Status.FAILED).order_by("-id").first()
    queries = {}
    for name, url in PAGES:
        url = url or f"/admin/jobs/jobrun/{failed.pk}/change/"

        def get(url=url):
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)
            return response

        timings[name] = _timed(get, repeats)
        with CaptureQueriesContext(connection) as captured:
            get()
        queries[name] = len(captured)
        if explain:
            _explain(name, captured.captured_queries)
    return timings, queries


def _explain(name: str, captured: list[dict]) -> None:
    from django.db import connection

    ranked = sorted(captured, key=lambda q: -float(q["time"]))
    print(f"\n--- {name}: {len(ranked)} queries, slowest first (ms):")
    for q in ranked:
        print(f"  {float(q['time']) * 1000:7.1f}  {q['sql'][:150]}")
    slowest = ranked[0]
    print(f"EXPLAIN of the slowest:\n{slowest['sql']}")
    prefix = "EXPLAIN ANALYZE " if connection.vendor == "postgresql" else "EXPLAIN QUERY PLAN "
    with connection.cursor() as cursor:
        cursor.execute(prefix + slowest["sql"])
        for row in cursor.fetchall():
            print("   ", " | ".join(str(c) for c in row))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--explain", action="store_true", help="EXPLAIN slowest query per page")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    setup_django(args.database_url, "queues", DJANGO_ALLOWED_HOSTS="testserver,localhost")

    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    missing = set(settings.JOBS_QUEUES) - {j[1] for j in JOB_MIX}
    assert not missing, f"JOB_MIX has no runs for queues {missing}"
    admin = get_user_model().objects.create_superuser(
        "bench-admin", "bench-admin@example.com", "bench-password-1"
    )
    client = Client()
    client.force_login(admin)

    results = {}
    for label, size in (("small", args.small), ("large", args.runs)):
        seconds = fill(size)
        summary = ledger_summary()
        print(
            f"{label}: {size} runs filled in {seconds:.1f} s "
            f"({', '.join(f'{k} {v}' for k, v in sorted(summary.items()))})"
        )
        results[label] = measure(client, args.repeats, args.explain and label == "large")

    (small, small_q), (large, large_q) = results["small"], results["large"]
    print(f"\ndatabase: {connection.vendor}, median of {args.repeats} after one warm-up")
    header = f"{'':<20}{args.small:>12} runs{args.runs:>12} runs{'ratio':>8}{'queries':>12}"
    print(header)
    print("-" * len(header))
    for name in small:
        q = f"{small_q[name]} / {large_q[name]}" if name in small_q else ""
        print(
            f"{name:<20}{small[name]:>12.1f} ms{large[name]:>12.1f} ms"
            f"{large[name] / small[name]:>8.2f}{q:>12}"
        )
    same = small_q == large_q
    print(f"queries per page equal at both sizes: {same}")
    result = {
        "runs": args.runs,
        "queue_page_ms_small": round(small["queue page"], 1),
        "queue_page_ms_large": round(large["queue page"], 1),
        "queue_page_ratio": round(large["queue page"] / small["queue page"], 2),
        "admin_changelist_ms_large": round(large["admin changelist"], 1),
        "admin_failed_ms_large": round(large["admin failed"], 1),
        "queue_stats_ms_large": round(large["queue_stats"], 1),
        "queries_per_page": large_q,
        "queries_equal": same,
        "database": connection.vendor,
        "small_runs": args.small,
        "ms_small": {k: round(v, 1) for k, v in small.items()},
        "ms_large": {k: round(v, 1) for k, v in large.items()},
    }
    emit(result, JSON_KEYS)


if __name__ == "__main__":
    main()
