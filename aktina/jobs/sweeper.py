"""Recovery work nobody else does: expired leases and pruning.

Runs every JOBS_SWEEP_SECONDS in each cluster's guard loop (aktina.jobs.sentinel): one sweeper
per cluster. Leases only bound runs claimed outside a cluster (`perform`); a cluster's runs are
kept by its heartbeat instead (aktina.jobs.processes). Delays need no sweep (the broker claims a
run once `available_at` passes) and nothing needs re-sending (the ledger is the queue). Every
step is a conditional update, so any number of sweepers may run at once, and "now" is the
database's clock, so a sweeper on a host whose clock runs ahead cannot expire a live lease.
"""

from __future__ import annotations

import logging

from django.conf import settings

from aktina.jobs.clock import db_now
from aktina.jobs.counters import counters_add
from aktina.jobs.lifecycle import job_for_run, run_expire
from aktina.jobs.models import JobRun

logger = logging.getLogger("aktina.jobs")
Status = JobRun.Status
BATCH = 500


def sweep() -> dict[str, int]:
    """One full pass; returns how many runs each step touched."""
    return counters_add(
        group="sweeper", counts={"expired": runs_expire_leases(), "pruned": runs_prune()}
    )


def runs_expire_leases() -> int:
    """Count an attempt for every run whose lease ran out; retry or fail it. Rows only: the
    failed() hooks of runs that fail here run later in a worker (RunFailedHooksJob)."""
    now = db_now()
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
        run_expire(run=run, job=job, now=now)
    return len(expired)


def runs_prune() -> int:
    """Delete succeeded and cancelled runs older than the retention; failed runs stay."""
    cutoff = db_now() - settings.JOBS_RETENTION
    old = JobRun.objects.filter(
        status__in=[Status.SUCCEEDED, Status.CANCELLED], finished_at__lt=cutoff
    )
    ids = list(old.values_list("id", flat=True)[: BATCH * 4])
    if not ids:
        return 0
    deleted, _ = JobRun.objects.filter(id__in=ids).delete()
    return len(ids) if deleted else 0


def sweep_safely() -> dict[str, int] | None:
    try:
        return sweep()
    except Exception:
        logger.exception("job sweeper pass failed")
        return None
