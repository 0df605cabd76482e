"""What the queue page shows: per-queue health, finished runs per minute (1 h) and per hour
(24 h), job classes, open queue-wait incidents and pauses, the clusters and workers alive (and
those lost lately), and queues with due runs that no live cluster serves. Every figure comes
from the ledger and the process table in a fixed number of statements whatever their size (see
aktina.jobs.selectors)."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.utils import timezone

from aktina.jobs.clock import db_now
from aktina.jobs.console.alerts import queue_wait_threshold
from aktina.jobs.console.models import QueueWaitIncident
from aktina.jobs.models import JobProcess, JobRun
from aktina.jobs.pausing import queue_pauses
from aktina.jobs.queues import cluster_for
from aktina.jobs.selectors import (
    job_stats,
    queue_minute_series,
    queue_stats,
    queue_timeseries,
    run_label,
)

MINUTE = dt.timedelta(minutes=1)
HOUR = dt.timedelta(hours=1)
# The clusters panel lists at most this many held runs (a cluster holds about its workers'
# count plus what it prefetched); the rest are counted.
HELD_RUNS_SHOWN = 200


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
    clusters = clusters_panel()
    due = {s["queue"]: s for s in stats if s["pending"]}
    unserved = [
        {
            "queue": q,
            "cluster": cluster_for(q),
            "due": due[q]["pending"],
            "oldest_waiting_at": due[q]["oldest_waiting_at"],
        }
        for q, n in clusters["served"].items()
        if n == 0 and q in due
    ]
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
        "clusters": clusters,
        "unserved": unserved,
    }


def clusters_panel(*, lost_within: dt.timedelta = HOUR) -> dict:
    """The process table as operators read it, on the database's clock (as the heartbeats):
    live clusters with their workers and the runs they hold (`in_worker`: in a worker's hands
    at the last heartbeat, else claimed and waiting in the cluster), rows whose heartbeat went
    stale within `lost_within` (kept only until a live cluster rescues their runs and deletes
    them, seconds later), and how many live clusters serve each queue. Three statements."""
    now = db_now()
    fresh = now - dt.timedelta(seconds=settings.JOBS_PROCESS_STALE_SECONDS)
    rows = list(JobProcess.objects.filter(last_seen__gte=now - lost_within))
    live = [r for r in rows if r.kind == JobProcess.Kind.CLUSTER and r.last_seen >= fresh]
    held = list(
        JobRun.objects.filter(status=JobRun.Status.RUNNING, holder_id__in=[c.pk for c in live])
        .only(
            "id", "job_name", "task_function", "started_at", "holder_id", "terminate_requested_by"
        )
        .order_by("started_at", "id")[:HELD_RUNS_SHOWN]
    )
    served = dict.fromkeys(settings.JOBS_QUEUES, 0)
    clusters = []
    for c in live:
        for queue in c.queues:
            if queue in served:
                served[queue] += 1
        in_hands = set(c.running or [])
        clusters.append(
            {
                "process": c,
                "workers": [
                    w
                    for w in rows
                    if w.kind == JobProcess.Kind.WORKER
                    and w.boot == c.boot
                    and w.last_seen >= fresh
                ],
                "held": [
                    {
                        "run": r,
                        "label": run_label(r),
                        "in_worker": r.pk in in_hands,
                        "seconds": max(0.0, (now - r.started_at).total_seconds())
                        if r.started_at
                        else None,
                    }
                    for r in held
                    if r.holder_id == c.pk
                ],
            }
        )
    return {
        "now": now,
        "live": clusters,
        "lost": [r for r in rows if r.last_seen < fresh],
        "served": served,
        "stale_seconds": settings.JOBS_PROCESS_STALE_SECONDS,
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
