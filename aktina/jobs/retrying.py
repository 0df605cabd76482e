"""Operators' retries: a failed or cancelled run goes again as a new run that points back to it.

The old run keeps its attempts and errors and becomes `retried` (so it leaves the failed list
and is never retried twice); the new run is an ordinary dispatch of the same job and options,
with fresh tries and `retry_of` set, so lineage reads both ways on the run page.
"""

from __future__ import annotations

from django.db import transaction

from aktina.jobs.dispatching import run_dispatch
from aktina.jobs.lifecycle import RunNotChangeable
from aktina.jobs.models import JobRun
from aktina.jobs.spec import DispatchSpec

Status = JobRun.Status
RETRYABLE = (Status.FAILED, Status.CANCELLED)
# Bulk retries work through ids in chunks of this many, each chunk its own transaction.
CHUNK = 200


def run_retry(*, run: JobRun) -> JobRun:
    """Retry one failed or cancelled run; returns the new run."""
    with transaction.atomic():
        taken = JobRun.objects.filter(pk=run.pk, status__in=RETRYABLE).update(status=Status.RETRIED)
        if not taken:
            run.refresh_from_db()
            if run.status == Status.RETRIED:
                raise RunNotChangeable(f"Run #{run.pk} was already retried.")
            raise RunNotChangeable(
                f"Run #{run.pk} is {run.status}; only failed or cancelled runs retry."
            )
        new = run_dispatch(spec=_spec_of(run), chain=run.chain, chain_catch=run.chain_catch)
        if new.retry_of_id != run.pk:
            # run_dispatch handed back the active run that holds the unique key.
            transaction.set_rollback(True)
            raise RunNotChangeable(
                f"Run #{run.pk}: run #{new.pk} with unique key {run.unique_key!r} is active."
            )
        if run.task_function:
            # A django-q2 task keeps its function path (see aktina.jobs.rawtasks).
            JobRun.objects.filter(pk=new.pk).update(task_function=run.task_function)
            new.task_function = run.task_function
    run.status = Status.RETRIED
    return new


def runs_retry_matching(
    *,
    queue: str | None = None,
    job_name: str | None = None,
    exception: str | None = None,
) -> tuple[int, list[str]]:
    """Retry every failed run matching the filters (all given must hold). `exception` is the
    exception class name that starts the stored error (`TimeoutError`, `JobTimedOut`).
    Returns how many were retried and why the others were not."""
    return runs_retry(
        runs=runs_failed_matching(queue=queue, job_name=job_name, exception=exception)
    )


def runs_retry(*, runs) -> tuple[int, list[str]]:
    """Retry every run of the queryset `runs`; returns how many and why the others were not."""
    # The ids first: a retry commits (and may send a broker message, which can close the
    # connection), so no cursor may stay open across one.
    ids = list(runs.order_by("pk").values_list("pk", flat=True))
    retried, refused = 0, []
    for start in range(0, len(ids), CHUNK):
        for run in JobRun.objects.filter(pk__in=ids[start : start + CHUNK]).order_by("pk"):
            try:
                run_retry(run=run)
            except RunNotChangeable as exc:
                refused.append(str(exc))  # its unique key is taken, or someone retried it first
                continue
            retried += 1
    return retried, refused


def runs_failed_matching(
    *, queue: str | None = None, job_name: str | None = None, exception: str | None = None
):
    runs = JobRun.objects.filter(status=Status.FAILED).order_by("pk")
    if queue:
        runs = runs.filter(queue=queue)
    if job_name:
        runs = runs.filter(job_name=job_name)
    if exception:
        # `_describe` stores "<ExceptionClass>: message"; the class is everything before ": ".
        runs = runs.filter(last_error__startswith=f"{exception}:")
    return runs


def _spec_of(run: JobRun) -> DispatchSpec:
    def span(until):
        return (until - run.created_at).total_seconds() if until else None

    return DispatchSpec(
        job=run.job_name,
        queue=run.queue,
        payload=run.payload,
        tries=run.tries,
        timeout=run.timeout,
        backoff=tuple(run.backoff),
        retry_for=span(run.retry_until),
        unique_key=run.unique_key,
        unique_for=span(run.unique_until),
        unique_until_processing=run.unique_until_processing,
        tags=tuple(run.tags.values_list("tag", flat=True)),
        priority=run.priority,
        retry_of=run.pk,
    )
