"""Reads of the ledger for operators: per-queue health, bounded whatever the ledger's size."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db.models import Count, Min, Q
from django.db.models.functions import TruncHour
from django.utils import timezone

from aktina.jobs.models import JobRun

Status = JobRun.Status
# Percentiles come from the most recent finished runs, not the whole hour: bounded cost.
SAMPLE = 2000


def queue_stats(*, now: dt.datetime | None = None) -> list[dict]:
    now = now or timezone.now()
    hour, day = now - dt.timedelta(hours=1), now - dt.timedelta(hours=24)
    active = {
        row["queue"]: row
        for row in JobRun.objects.filter(status__in=[Status.QUEUED, Status.RUNNING, Status.FAILED])
        .values("queue")
        .annotate(
            pending=Count("id", filter=Q(status=Status.QUEUED, available_at__lte=now)),
            delayed=Count("id", filter=Q(status=Status.QUEUED, available_at__gt=now)),
            running=Count("id", filter=Q(status=Status.RUNNING)),
            failed=Count("id", filter=Q(status=Status.FAILED)),
            oldest_waiting_at=Min(
                "available_at", filter=Q(status=Status.QUEUED, available_at__lte=now)
            ),
        )
    }
    done = {
        row["queue"]: row
        for row in JobRun.objects.filter(status=Status.SUCCEEDED, finished_at__gte=day)
        .values("queue")
        .annotate(
            throughput_1h=Count("id", filter=Q(finished_at__gte=hour)),
            throughput_24h=Count("id"),
        )
    }
    stats = []
    for queue in settings.JOBS_QUEUES:
        a, d = active.get(queue, {}), done.get(queue, {})
        waits, runs = _recent_timings(queue, since=hour)
        stats.append(
            {
                "queue": queue,
                "pending": a.get("pending", 0),
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
    now = now or timezone.now()
    since = (now - dt.timedelta(hours=hours)).replace(minute=0, second=0, microsecond=0)
    rows = (
        JobRun.objects.filter(status__in=[Status.SUCCEEDED, Status.FAILED], finished_at__gte=since)
        .annotate(bucket=TruncHour("finished_at"))
        .values("bucket", "queue")
        .annotate(
            succeeded=Count("id", filter=Q(status=Status.SUCCEEDED)),
            failed=Count("id", filter=Q(status=Status.FAILED)),
        )
        .order_by("bucket", "queue")
    )
    return list(rows)


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


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile; None for no data."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return round(ordered[rank], 1)
