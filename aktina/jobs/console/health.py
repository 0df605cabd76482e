"""What the queue page shows: per-queue health, finished runs per minute (1 h) and per hour
(24 h), job classes, open queue-wait incidents and pauses. Every figure comes from the ledger in
a fixed number of statements whatever its size (see aktina.jobs.selectors)."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from aktina.jobs.console.alerts import queue_wait_threshold
from aktina.jobs.console.models import QueueWaitIncident
from aktina.jobs.pausing import queue_pauses
from aktina.jobs.selectors import job_stats, queue_minute_series, queue_stats, queue_timeseries

MINUTE = dt.timedelta(minutes=1)
HOUR = dt.timedelta(hours=1)


def queue_health(*, hours: int = 24, minutes: int = 60, now: dt.datetime | None = None) -> dict:
    now = now or timezone.now()
    stats = queue_stats(now=now)
    first_hour = (now - (hours - 1) * HOUR).replace(minute=0, second=0, microsecond=0)
    hour_buckets = [first_hour + h * HOUR for h in range(hours)]
    first_minute = (now - (minutes - 1) * MINUTE).replace(second=0, microsecond=0)
    minute_buckets = [first_minute + m * MINUTE for m in range(minutes)]
    queues = [s["queue"] for s in stats]
    per_queue, total = _buckets(queue_timeseries(hours=hours, now=now), hour_buckets, queues)
    _, per_minute = _buckets(queue_minute_series(minutes=minutes, now=now), minute_buckets, queues)
    incidents = {i.queue: i for i in QueueWaitIncident.objects.filter(ended_at__isnull=True)}
    pauses = queue_pauses()
    for s in stats:
        s["pause"] = pauses.get(s["queue"])
        oldest = s["oldest_waiting_at"]
        s["current_wait_seconds"] = max(0.0, (now - oldest).total_seconds()) if oldest else 0.0
        s["wait_threshold_seconds"] = queue_wait_threshold(s["queue"])
        s["incident"] = incidents.get(s["queue"])
        s["series"] = [(b, *per_queue[s["queue"]][b]) for b in hour_buckets]
    last_minutes = [(b, *per_minute[b]) for b in minute_buckets]
    return {
        "generated_at": now,
        "queues": stats,
        "series": [(b, *total[b]) for b in hour_buckets],
        "minutes": last_minutes,
        "last_hour": {
            "succeeded": sum(ok for _, ok, _ in last_minutes),
            "failed": sum(failed for _, _, failed in last_minutes),
        },
        "jobs": job_stats(now=now),
    }


def _buckets(rows: list[dict], buckets: list[dt.datetime], queues: list[str]):
    """(per queue, all queues): bucket -> [succeeded, failed]; rows outside `buckets` dropped."""
    per_queue = {q: {b: [0, 0] for b in buckets} for q in queues}
    total = {b: [0, 0] for b in buckets}
    for row in rows:
        bucket = row["bucket"]
        if bucket not in total:
            continue
        for target in (total, per_queue.get(row["queue"])):
            if target is not None:
                target[bucket][0] += row["succeeded"]
                target[bucket][1] += row["failed"]
    return per_queue, total
