"""Reads of the ledger for operators: per-queue health, bounded whatever the ledger's size."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import connection
from django.db.models import CharField, Count, FloatField, IntegerField, Min, Q, Value
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast, Coalesce
from django.utils import timezone

from aktina.core.stats import percentile
from aktina.jobs.models import JobRun

Status = JobRun.Status
# Percentiles come from the most recent finished runs, not the whole hour: bounded cost.
SAMPLE = 2000
# Per job class: there are a dozen classes, so a smaller sample keeps the page bounded.
SAMPLE_PER_JOB = 500
HOUR = dt.timedelta(hours=1)
# The per-queue counts group by CAST(queue), not the bare column: with ANALYZE statistics
# SQLite otherwise walks jobrun_queue_status in queue order (to save the GROUP BY sort) and
# reads every run's row instead of the covering index (1 s instead of 80 ms at 1M runs).
QUEUE = Cast("queue", output_field=CharField())
# What a run is called wherever a job name is shown or counted: a django-q2 task's function
# path (`math.sqrt`), else the job class.
JOB_LABEL = Coalesce("task_function", "job_name", output_field=CharField())
RAW_TASK = "aktina.jobs.rawtasks.DjangoQTask"


def run_label(run: JobRun) -> str:
    """The name of one run as operators read it: `math.sqrt`, or the job class's own name."""
    return run.task_function or run.job_name.rsplit(".", 1)[-1]


def queues_active_counts(*, now: dt.datetime) -> dict[str, dict]:
    """Per queue: due (`queued`), delayed, running and failed runs, and the oldest due run's
    `available_at` (`oldest_waiting_at`). One statement; each count reads only columns of an
    index ending in `queue` (COUNT("status"), never COUNT("id")): index-only scans, not a visit
    to each failed run's row."""
    return {
        row["q"]: row
        for row in JobRun.objects.filter(status__in=[Status.QUEUED, Status.RUNNING, Status.FAILED])
        .values(q=QUEUE)
        .annotate(
            queued=Count("status", filter=Q(status=Status.QUEUED, available_at__lte=now)),
            delayed=Count("status", filter=Q(status=Status.QUEUED, available_at__gt=now)),
            running=Count("status", filter=Q(status=Status.RUNNING)),
            failed=Count("status", filter=Q(status=Status.FAILED)),
            oldest_waiting_at=Min(
                "available_at", filter=Q(status=Status.QUEUED, available_at__lte=now)
            ),
        )
    }


def queue_stats(*, now: dt.datetime | None = None) -> list[dict]:
    now = now or timezone.now()
    hour, day = now - dt.timedelta(hours=1), now - dt.timedelta(hours=24)
    active = queues_active_counts(now=now)
    done = {
        row["q"]: row
        for row in JobRun.objects.filter(status=Status.SUCCEEDED, finished_at__gte=day)
        .values(q=QUEUE)
        .annotate(
            throughput_1h=Count("status", filter=Q(finished_at__gte=hour)),
            throughput_24h=Count("status"),
        )
    }
    stats = []
    for queue in settings.JOBS_QUEUES:
        a, d = active.get(queue, {}), done.get(queue, {})
        waits, runs = _recent_timings(queue, since=hour)
        stats.append(
            {
                "queue": queue,
                "pending": a.get("queued", 0),
                "delayed": a.get("delayed", 0),
                "running": a.get("running", 0),
                "failed": a.get("failed", 0),
                "throughput_1h": d.get("throughput_1h", 0),
                "throughput_24h": d.get("throughput_24h", 0),
                "wait_p50_ms": percentile(waits, 50),
                "wait_p95_ms": percentile(waits, 95),
                "run_p50_ms": percentile(runs, 50),
                "run_p95_ms": percentile(runs, 95),
                "oldest_waiting_at": a.get("oldest_waiting_at"),
            }
        )
    return stats


def queue_timeseries(*, hours: int = 24, now: dt.datetime | None = None) -> list[dict]:
    """Finished runs per hour and queue since the start of the hour `hours` ago."""
    now = now or timezone.now()
    since = (now - dt.timedelta(hours=hours)).replace(minute=0, second=0, microsecond=0)
    return runs_finished_series(since=since, step=HOUR, buckets=hours + 1)


def queue_minute_series(*, minutes: int = 60, now: dt.datetime | None = None) -> list[dict]:
    """Finished runs per minute and queue over the last `minutes` minutes (this one included)."""
    now = now or timezone.now()
    since = (now - dt.timedelta(minutes=minutes - 1)).replace(second=0, microsecond=0)
    return runs_finished_series(since=since, step=dt.timedelta(minutes=1), buckets=minutes)


def runs_finished_series(*, since: dt.datetime, step: dt.timedelta, buckets: int) -> list[dict]:
    """Finished runs per bucket (`since + k * step`) and queue, succeeded and failed.

    One statement: a UNION ALL of one grouped count per bucket, each a range of the covering
    index (status, finished_at, queue), so the cost follows the runs of the window, never the
    ledger's size. Truncating every row's finished_at instead (TruncHour: a Python function per
    row on SQLite) and sorting a whole day of runs cost 3-10x more at 1M runs. Rows: bucket,
    queue, succeeded, failed, ordered by bucket and queue.
    """
    starts = [since + k * step for k in range(buckets)]
    finished = [Status.SUCCEEDED, *JobRun.FAILURES]
    per_bucket = [
        JobRun.objects.filter(status__in=finished, finished_at__gte=b, finished_at__lt=b + step)
        .values("status", q=QUEUE, k=Value(k, output_field=IntegerField()))
        .annotate(n=Count("status"))
        .order_by()
        for k, b in enumerate(starts)
    ]
    counts: dict[tuple, dict] = {}
    # order_by(): Django 6.1 gives the union the model's default ordering, which it cannot apply.
    for row in per_bucket[0].union(*per_bucket[1:], all=True).order_by():
        bucket = starts[row["k"]]
        entry = counts.setdefault(
            (bucket, row["q"]), {"bucket": bucket, "queue": row["q"], "succeeded": 0, "failed": 0}
        )
        # A failed run that an operator retried still failed in its bucket.
        entry["succeeded" if row["status"] == Status.SUCCEEDED else "failed"] += row["n"]
    return [counts[key] for key in sorted(counts)]


def job_stats(*, now: dt.datetime | None = None) -> list[dict]:
    """Per job class, and per function for django-q2's own tasks (`math.sqrt`, schedules):
    throughput (1 h, 24 h), run time p50/p95, failure rate (24 h) and the last failure.
    Queries: 4, plus 1 per job (its run-time sample); each reads ranges of the
    (status, job_name, finished_at, started_at) or (task_function, status, finished_at,
    started_at) index, whatever the ledger's size.
    """
    now = now or timezone.now()
    hour, day = now - HOUR, now - dt.timedelta(hours=24)
    keys = _job_keys()
    if not keys:
        return []
    per_job = [
        JobRun.objects.filter(
            status__in=[Status.SUCCEEDED, *JobRun.FAILURES], finished_at__gte=day, **{col: value}
        )
        .values("status", k=Value(k, output_field=IntegerField()))
        .annotate(n_24h=Count("status"), n_1h=Count("status", filter=Q(finished_at__gte=hour)))
        .order_by()
        for k, (col, value) in enumerate(keys)
    ]
    counts = {k: {"ok_1h": 0, "ok_24h": 0, "failed_24h": 0} for k in range(len(keys))}
    # order_by(): as above, Django 6.1 would order the union by the model's default.
    for row in per_job[0].union(*per_job[1:], all=True).order_by():
        entry = counts[row["k"]]
        if row["status"] == Status.SUCCEEDED:
            entry["ok_1h"] += row["n_1h"]
            entry["ok_24h"] += row["n_24h"]
        else:
            entry["failed_24h"] += row["n_24h"]
    last_failures = _last_failures(keys)
    stats = []
    for k, (col, value) in enumerate(keys):
        c = counts[k]
        runs = [
            max(0.0, ms)
            for ms in JobRun.objects.filter(
                status=Status.SUCCEEDED, finished_at__gte=hour, **{col: value}
            )
            .order_by("-finished_at")
            .annotate(ms=_run_ms())
            .values_list("ms", flat=True)[:SAMPLE_PER_JOB]
        ]
        last = last_failures.get((col, value))
        ended = c["ok_24h"] + c["failed_24h"]
        raw = col == "task_function"
        stats.append(
            {
                "job_name": value,
                "job": value if raw else value.rsplit(".", 1)[-1],
                "kind": "task" if raw else "job",
                "throughput_1h": c["ok_1h"],
                "throughput_24h": c["ok_24h"],
                "failed_24h": c["failed_24h"],
                "failure_rate": round(c["failed_24h"] / ended, 4) if ended else None,
                "run_p50_ms": percentile(runs, 50),
                "run_p95_ms": percentile(runs, 95),
                "last_failure": last
                and {
                    "run_id": last["pk"],
                    "at": last["finished_at"],
                    "error": error_summary(last["last_error"]),
                },
            }
        )
    return stats


def _job_keys() -> list[tuple[str, str]]:
    """(column, value) per job as operators count them: each job class, except django-q2's
    task class, which stands for one entry per function path."""
    keys = [("job_name", name) for name in ledger_distinct("job_name") if name != RAW_TASK]
    return keys + [("task_function", fn) for fn in ledger_distinct("task_function")]


def _last_failures(keys: list[tuple[str, str]]) -> dict[tuple[str, str], dict]:
    """The newest failed-or-retried run of each job, in one statement.

    One `ORDER BY finished_at DESC LIMIT 1` per (status, job): a single backward step of the
    index each. `status IN (failed, retried)` in one query instead made PostgreSQL read and sort
    every failure of the class (5 000 row visits per class at 1M runs).
    """
    table = connection.ops.quote_name(JobRun._meta.db_table)
    one = (
        "SELECT * FROM (SELECT job_name, task_function, id, finished_at, last_error FROM {table} "
        "WHERE status = %s AND {col} = %s ORDER BY finished_at DESC LIMIT 1) AS t{n}"
    )
    parts, params = [], []
    for col, value in keys:
        for status in JobRun.FAILURES:
            quoted = connection.ops.quote_name(col)
            parts.append(one.format(table=table, col=quoted, n=len(parts)))
            params += [status, value]
    newest: dict[tuple[str, str], dict] = {}
    # raw(): the model's converters turn SQLite's text timestamps into aware datetimes.
    for run in JobRun.objects.raw(" UNION ALL ".join(parts), params):
        key = (
            ("task_function", run.task_function)
            if run.task_function
            else ("job_name", run.job_name)
        )
        known = newest.get(key)
        if known is None or run.finished_at > known["finished_at"]:
            newest[key] = {
                "pk": run.pk,
                "finished_at": run.finished_at,
                "last_error": run.last_error,
            }
    return newest


def _run_ms() -> RawSQL:
    # Milliseconds computed by the database: parsing two datetimes per sampled run in Python
    # cost more than the index reads (SQLite stores text).
    if connection.vendor == "postgresql":
        sql = 'EXTRACT(EPOCH FROM ("finished_at" - "started_at"))::float8 * 1000'
    else:
        sql = '(julianday("finished_at") - julianday("started_at")) * 86400000.0'
    return RawSQL(sql, [], output_field=FloatField())


def error_summary(text: str, *, limit: int = 100) -> str:
    """An error as one readable line: its first non-blank line, spaces collapsed, cut short."""
    line = next((ln for ln in text.splitlines() if ln.strip()), "")
    line = " ".join(line.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def failed_exception_classes(*, sample: int = 1000) -> list[str]:
    """The exception classes among the most recent failed runs (the admin's filter choices)."""
    errors = (
        JobRun.objects.filter(status=Status.FAILED)
        .order_by("-finished_at")
        .values_list("last_error", flat=True)[:sample]
    )
    return sorted(
        {e.split(":", 1)[0] for e in errors if ":" in e and " " not in e.split(":", 1)[0]}
    )


def _recent_timings(queue: str, *, since: dt.datetime) -> tuple[list[float], list[float]]:
    rows = (
        JobRun.objects.filter(queue=queue, status=Status.SUCCEEDED, finished_at__gte=since)
        .order_by("-finished_at")
        .values_list("available_at", "started_at", "finished_at")[:SAMPLE]
    )
    waits, runs = [], []
    for available_at, started_at, finished_at in rows:
        waits.append(max(0.0, (started_at - available_at).total_seconds() * 1000))
        runs.append(max(0.0, (finished_at - started_at).total_seconds() * 1000))
    return waits, runs


def ledger_distinct(column: str) -> list[str]:
    """The distinct values of `column`, which must lead an index (`job_name`, `queue`).

    A loose index scan: one index probe per distinct value ("the next value after the last
    one"), so the cost follows the number of values, not of runs. `SELECT DISTINCT` (what the
    admin's value filters run) reads the whole ledger.
    """
    if column not in ("job_name", "queue", "task_function"):
        raise ValueError(f"{column!r} does not lead an index of the ledger")
    table = connection.ops.quote_name(JobRun._meta.db_table)
    col = connection.ops.quote_name(column)
    sql = (
        f"WITH RECURSIVE v(x) AS ("
        f"SELECT (SELECT {col} FROM {table} WHERE {col} IS NOT NULL ORDER BY {col} LIMIT 1) "
        f"UNION ALL SELECT (SELECT {col} FROM {table} WHERE {col} > v.x ORDER BY {col} LIMIT 1) "
        f"FROM v WHERE v.x IS NOT NULL"
        f") SELECT x FROM v WHERE x IS NOT NULL"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return [row[0] for row in cursor.fetchall()]


def ledger_row_count(*, estimate_above: int) -> int | None:
    """How many runs the ledger holds, in one statement, on PostgreSQL: the planner's estimate
    (`pg_class.reltuples`, kept by ANALYZE/autovacuum) once it is above `estimate_above`, an
    exact COUNT(*) below (the COUNT is never executed otherwise). None on other databases."""
    if connection.vendor != "postgresql":
        return None
    table = connection.ops.quote_name(JobRun._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT CASE WHEN c.reltuples > %s THEN c.reltuples::bigint "
            f"ELSE (SELECT COUNT(*) FROM {table}) END "
            "FROM pg_class c WHERE c.oid = %s::regclass",
            [estimate_above, JobRun._meta.db_table],
        )
        return cursor.fetchone()[0]
