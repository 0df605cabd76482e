"""Chains and batches: several jobs dispatched as one unit."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from aktina.jobs.dispatching import run_dispatch, runs_dispatch_many
from aktina.jobs.lifecycle import batch_close, batch_member_ended
from aktina.jobs.models import JobBatch, JobRun


class Chain:
    """Run jobs one after another; a link starts only when the previous one succeeded."""

    def __init__(self, jobs):
        if not jobs:
            raise ValueError("A chain needs at least one job.")
        self.jobs = list(jobs)
        self._catch = None

    def catch(self, job) -> Chain:
        self._catch = job
        return self

    def dispatch(self) -> JobRun:
        specs = [job.to_spec() for job in self.jobs]
        catch = self._catch.to_spec() if self._catch else None
        return run_dispatch(spec=specs[0], chain=specs[1:], chain_catch=catch)


class Batch:
    """Run jobs in parallel, with callbacks once they have all ended."""

    def __init__(self, jobs, name: str = ""):
        self.jobs, self.name = list(jobs), name
        self._then = self._catch = self._finally = None

    def then(self, job) -> Batch:
        self._then = job
        return self

    def catch(self, job) -> Batch:
        self._catch = job
        return self

    def finally_(self, job) -> Batch:
        self._finally = job
        return self

    @transaction.atomic
    def dispatch(self) -> JobBatch:
        """The batch row, then its members' runs in one multi-row INSERT (`dispatch_many`)."""
        batch = JobBatch.objects.create(
            name=self.name,
            total=len(self.jobs),
            pending=len(self.jobs),
            then_spec=_stored(self._then),
            catch_spec=_stored(self._catch),
            finally_spec=_stored(self._finally),
        )
        runs = runs_dispatch_many(specs=[job.to_spec() for job in self.jobs], batch=batch)
        # A unique member whose key an active run holds (or a repeat of one in this batch) got
        # that run back: it is not a member, and the batch must not wait for it.
        members = len({run.pk for run in runs if run.batch_id == batch.pk})
        if members != batch.total:
            JobBatch.objects.filter(pk=batch.pk).update(total=members, pending=members)
            batch.total = batch.pending = members
        if not members:
            batch_close(batch=batch)
        return batch


def _stored(job) -> dict | None:
    return job.to_spec().to_stored() if job is not None else None


def chain(*jobs) -> Chain:
    return Chain(jobs)


def batch(jobs, name: str = "") -> Batch:
    return Batch(jobs, name=name)


@transaction.atomic
def batch_cancel(*, batch: JobBatch) -> JobBatch:
    """Cancel a batch: its queued members are cancelled; running ones finish their attempt."""
    updated = JobBatch.objects.filter(pk=batch.pk, cancelled_at__isnull=True).update(
        cancelled_at=timezone.now()
    )
    if updated:
        queued = list(
            JobRun.objects.filter(batch=batch, status=JobRun.Status.QUEUED).values_list(
                "id", flat=True
            )
        )
        for run_id in queued:
            cancelled = JobRun.objects.filter(pk=run_id, status=JobRun.Status.QUEUED).update(
                status=JobRun.Status.CANCELLED, finished_at=timezone.now(), unique_active=False
            )
            if cancelled:
                batch_member_ended(batch_id=batch.pk, failed=False)
    batch.refresh_from_db()
    return batch
