"""The process table: which clusters (and their workers) are alive, what they serve, and the
rescue of runs whose holder died.

Every qcluster's sentinel registers a `cluster` row, and a `worker` row per worker it starts,
and refreshes them all every JOBS_HEARTBEAT_SECONDS on the database's clock. A run the cluster
claimed points at its cluster row (`JobRun.holder`). A row not refreshed for
JOBS_PROCESS_STALE_SECONDS belongs to a dead process: whichever live cluster notices first
hands its runs back (those in a worker's hands at its last heartbeat count an attempt; the rest
had not started) and deletes the rows.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket

from django.conf import settings
from django.db.models import Count

from aktina.jobs.clock import db_now
from aktina.jobs.counters import counters_add
from aktina.jobs.lifecycle import run_hand_back
from aktina.jobs.models import JobProcess, JobRun

logger = logging.getLogger("aktina.jobs")
Status = JobRun.Status
Kind = JobProcess.Kind


# --- services -----------------------------------------------------------------------------------
def process_register(
    *, kind: str, cluster: str, queues: list[str], boot: str, pid: int | None = None
) -> JobProcess:
    now = db_now()
    return JobProcess.objects.create(
        kind=kind,
        cluster=cluster,
        host=socket.gethostname(),
        pid=pid or os.getpid(),
        boot=boot,
        queues=list(queues),
        started_at=now,
        last_seen=now,
    )


def processes_heartbeat(*, cluster_id: int, boot: str, running: list[int]) -> int:
    """Refresh a cluster's rows (its own and its workers'), recording the runs in its workers'
    hands. Returns how many rows were refreshed: 0 means another cluster took this one for
    dead (and handed its runs back); it must stop claiming as that row."""
    now = db_now()
    JobProcess.objects.filter(pk=cluster_id).update(running=sorted(running))
    return JobProcess.objects.filter(boot=boot).update(last_seen=now)


def process_forget(*, ids: list[int]) -> None:
    JobProcess.objects.filter(pk__in=ids).delete()


def runs_rescue(*, now: dt.datetime | None = None) -> int:
    """Hand back every run held by a cluster whose heartbeat is stale, then forget that
    cluster. Safe from any number of clusters at once: each hand-back is fenced by attempt."""
    now = now or db_now()
    stale = list(
        JobProcess.objects.filter(
            kind=Kind.CLUSTER, last_seen__lt=now - _stale_after()
        ).values_list("pk", "cluster", "host", "pid", "running")
    )
    rescued = reran = 0
    for pk, cluster, host, pid, running in stale:
        held = list(JobRun.objects.filter(holder_id=pk, status=Status.RUNNING).order_by("id"))
        for run in held:
            counted = run.pk in (running or [])
            run_hand_back(
                run=run,
                counted=counted,
                reason=(
                    f"Attempt {run.attempts}: cluster {cluster} ({host} pid {pid}) stopped "
                    "sending heartbeats while running it."
                ),
                now=now,
            )
            reran += counted
        rescued += len(held)
        logger.warning(
            "cluster %s (%s pid %s) is gone: handed back %d run(s)", cluster, host, pid, len(held)
        )
    if stale:
        JobProcess.objects.filter(pk__in=[s[0] for s in stale]).delete()
    # Worker rows of clusters that are gone or that forgot to delete them.
    JobProcess.objects.filter(kind=Kind.WORKER, last_seen__lt=now - _stale_after()).delete()
    # Runs that were in a worker's hands: they run again (the chaos run reports them).
    counters_add(group="sentinel", counts={"runs_rescued": reran})
    return rescued


def _stale_after() -> dt.timedelta:
    return dt.timedelta(seconds=settings.JOBS_PROCESS_STALE_SECONDS)


# --- selectors ----------------------------------------------------------------------------------
def clusters_alive(*, now: dt.datetime | None = None) -> list[dict]:
    """Live clusters (fresh heartbeat): name, host, pid, queues, started, last seen, held runs,
    workers; by name, host, pid."""
    now = now or db_now()
    fresh = now - _stale_after()
    rows = list(
        JobProcess.objects.filter(kind=Kind.CLUSTER, last_seen__gte=fresh).order_by(
            "cluster", "host", "pid"
        )
    )
    held = dict(
        JobRun.objects.filter(status=Status.RUNNING, holder_id__in=[r.pk for r in rows])
        .values("holder_id")
        .annotate(n=Count("id"))
        .values_list("holder_id", "n")
    )
    workers = dict(
        JobProcess.objects.filter(kind=Kind.WORKER, last_seen__gte=fresh)
        .values("boot")
        .annotate(n=Count("id"))
        .values_list("boot", "n")
    )
    return [
        {
            "name": r.cluster,
            "host": r.host,
            "pid": r.pid,
            "queues": list(r.queues),
            "started": r.started_at,
            "last_seen": r.last_seen,
            "held_runs": held.get(r.pk, 0),
            "workers": workers.get(r.boot, 0),
        }
        for r in rows
    ]


def queues_served_alive(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Per configured queue: how many live clusters serve it. Two statements."""
    now = now or db_now()
    served = dict.fromkeys(settings.JOBS_QUEUES, 0)
    live = JobProcess.objects.filter(kind=Kind.CLUSTER, last_seen__gte=now - _stale_after())
    for queues in live.values_list("queues", flat=True):
        for queue in queues:
            if queue in served:
                served[queue] += 1
    return served


def queues_unserved(
    *, now: dt.datetime | None = None, served: dict[str, int] | None = None
) -> list[str]:
    """Queues with due runs (queued, available now) and no live cluster serving them. At most
    three statements (one when `served` is given and every queue is served)."""
    now = now or db_now()
    served = served if served is not None else queues_served_alive(now=now)
    nobody = [q for q, n in served.items() if n == 0]
    if not nobody:
        return []
    due = set(
        JobRun.objects.filter(status=Status.QUEUED, available_at__lte=now, queue__in=nobody)
        .values_list("queue", flat=True)
        .distinct()
    )
    return [q for q in nobody if q in due]
