"""Run queued jobs inline through the worker's own code path (claim, execute, record)."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from aktina.jobs.lifecycle import runs_claim
from aktina.jobs.models import JobRun
from aktina.jobs.pausing import queues_paused
from aktina.jobs.sweeper import runs_expire_leases
from aktina.jobs.worker import perform


def work_off(*, queue: str | None = None, include_delayed: bool = False, limit: int = 1000) -> int:
    """Perform due runs until none is left; returns how many deliveries were made.

    `include_delayed` makes delayed and backed-off runs due now, as if their time had come.
    """
    done = 0
    while done < limit:
        runs_expire_leases()
        # A paused queue's runs are not claimed; offering them again would only spin.
        due = JobRun.objects.filter(status=JobRun.Status.QUEUED).exclude(queue__in=queues_paused())
        if queue:
            due = due.filter(queue=queue)
        if include_delayed:
            due.filter(available_at__gt=timezone.now()).update(available_at=timezone.now())
        run = due.filter(available_at__lte=timezone.now()).order_by("available_at", "id").first()
        if run is None:
            return done
        perform(run.pk, run.timeout or settings.JOBS_LEASE_GRACE_SECONDS)
        done += 1
    return done


def claimable(*, queues: list[str], limit: int = 10) -> list[tuple[int, int]]:
    """What a cluster's dequeue would claim now, as (run id, timeout) pairs in delivery order;
    the claim is rolled back, so nothing changes."""
    with transaction.atomic():
        runs = runs_claim(queues=queues, limit=limit, holder_id=0, worker="claimable")
        transaction.set_rollback(True)
    return [(run.pk, run.timeout) for run in runs]
