"""Recovery work nobody else does: expired leases, due delayed runs, lost messages, pruning.

Runs from a django-q2 schedule, at worker start, and every JOBS_SWEEP_SECONDS from a thread in
each worker process (django-q2's scheduler wakes only every ~30 s, too coarse for delays).
Every step is a conditional update, so any number of sweepers may run at once.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time

from django.conf import settings
from django.db import close_old_connections, transaction
from django.utils import timezone

from aktina.jobs.broker import messages_send, messages_waiting
from aktina.jobs.counters import counters_add
from aktina.jobs.lifecycle import run_expire
from aktina.jobs.models import JobRun
from aktina.jobs.queues import cluster_for, queues_served_by

logger = logging.getLogger("aktina.jobs")
Status = JobRun.Status
BATCH = 500


def sweep() -> dict[str, int]:
    """One full pass; returns how many runs each step touched."""
    return counters_add(
        group="sweeper",
        counts={
            "expired": runs_expire_leases(),
            "promoted": runs_promote_due(),
            "resent": runs_resend_stale(),
            "pruned": runs_prune(),
        },
    )


def runs_expire_leases() -> int:
    from aktina.jobs.worker import job_for_run

    now = timezone.now()
    expired = list(
        JobRun.objects.filter(status=Status.RUNNING, lease_expires_at__lt=now).order_by("id")[
            :BATCH
        ]
    )
    for run in expired:
        try:
            job = job_for_run(run)
        except Exception:  # noqa: BLE001 - the run still ends; only the failed() hook is lost
            job = None
        run_expire(run=run, job=job)
    return len(expired)


def runs_promote_due() -> int:
    """Send messages for delayed or backed-off runs that have become due."""
    now = timezone.now()
    return _send_marked(
        JobRun.objects.filter(status=Status.QUEUED, sent_at__isnull=True, available_at__lte=now),
        now,
    )


def runs_resend_stale() -> int:
    """Send again when a due run's message led to no start: lost by the broker or never sent.

    Only as many as the broker is missing: a run waits `JOBS_RESEND_AFTER_SECONDS` in a long
    backlog too, and re-sending every such run each pass would grow the broker without bound
    while the cluster is merely busy (or stopped). A message per due run still in the broker
    means nothing was lost; fewer messages than due runs means that many are gone.
    """
    now = timezone.now()
    stale = now - dt.timedelta(seconds=settings.JOBS_RESEND_AFTER_SECONDS)
    resent = 0
    for cluster in sorted({cluster_for(q) for q in settings.JOBS_QUEUES}):
        queues = queues_served_by(cluster)
        stale_runs = JobRun.objects.filter(
            status=Status.QUEUED, queue__in=queues, available_at__lte=stale, sent_at__lte=stale
        )
        if not stale_runs.exists():
            continue
        due = JobRun.objects.filter(
            status=Status.QUEUED, queue__in=queues, available_at__lte=now, sent_at__isnull=False
        ).count()
        missing = due - messages_waiting(cluster)
        if missing > 0:
            resent += _send_marked(stale_runs, now, limit=min(missing, BATCH))
    return resent


def runs_prune() -> int:
    """Delete succeeded and cancelled runs older than the retention; failed runs stay."""
    cutoff = timezone.now() - settings.JOBS_RETENTION
    old = JobRun.objects.filter(
        status__in=[Status.SUCCEEDED, Status.CANCELLED], finished_at__lt=cutoff
    )
    ids = list(old.values_list("id", flat=True)[: BATCH * 4])
    if not ids:
        return 0
    deleted, _ = JobRun.objects.filter(id__in=ids).delete()
    return len(ids) if deleted else 0


def _send_marked(candidates, now: dt.datetime, limit: int = BATCH) -> int:
    with transaction.atomic():
        # skip_locked: two sweepers on PostgreSQL split the work instead of both sending.
        rows = list(
            candidates.select_for_update(skip_locked=True)
            .order_by("available_at")
            .values_list("id", "queue", "timeout")[:limit]
        )
        if not rows:
            return 0
        JobRun.objects.filter(id__in=[r[0] for r in rows], status=Status.QUEUED).update(sent_at=now)
        transaction.on_commit(lambda: messages_send(rows))
    return len(rows)


def sweep_safely() -> dict[str, int] | None:
    try:
        return sweep()
    except Exception:
        logger.exception("job sweeper pass failed")
        return None


class SweeperThread(threading.Thread):
    """Sweeps every `interval` seconds inside a worker process until that process ends."""

    def __init__(self, interval: float):
        super().__init__(name="aktina-job-sweeper", daemon=True)
        self.interval = interval

    def run(self) -> None:
        while True:
            time.sleep(self.interval)
            close_old_connections()
            sweep_safely()


_thread: SweeperThread | None = None


def sweeper_thread_start() -> None:
    global _thread
    if _thread is None and settings.JOBS_SWEEP_SECONDS > 0:
        _thread = SweeperThread(settings.JOBS_SWEEP_SECONDS)
        _thread.start()
