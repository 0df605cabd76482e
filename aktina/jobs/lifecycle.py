"""Every state change of a run, each a conditional UPDATE so that only one process makes it.

queued --claim--> running --succeed--> succeeded
                          --retry----> queued (later)     --fail--> failed
                          --release--> queued (attempt not counted)
queued --cancel--> cancelled;  operators' retries: aktina.jobs.retrying
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
import traceback as tb

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from aktina.core.redaction import redact
from aktina.jobs.clock import db_now, later_param, later_sql, now_sql
from aktina.jobs.models import JobAttempt, JobBatch, JobRun
from aktina.jobs.pausing import queues_paused
from aktina.jobs.signals import job_failed, job_succeeded

logger = logging.getLogger("aktina.jobs")

Status = JobRun.Status


class RunNotChangeable(Exception):
    """An operator asked for a transition the run's current state does not allow."""


def backoff_seconds(run: JobRun, attempt: int) -> float:
    """Delay before the next attempt: backoff[attempt-1], the last value repeating, ±10% jitter."""
    steps = run.backoff or [0]
    base = float(steps[min(attempt, len(steps)) - 1])
    # Jitter spreads retries of runs that failed together (an outage) over time.
    return max(0.0, base * random.uniform(0.9, 1.1))


def can_retry(run: JobRun, now: dt.datetime) -> bool:
    # Both bounds hold: a deadline (Laravel's retryUntil) cuts tries short, never extends them.
    if run.retry_until is not None and now >= run.retry_until:
        return False
    return run.attempts < run.tries


def run_claim(*, run_id: int, timeout: int, worker: str, grace: int) -> JobRun | None:
    """queued -> running for a due run; returns the claimed run, or None when it is not ours.

    One UPDATE ... RETURNING (PostgreSQL, SQLite >= 3.35): the claim and the read are one
    statement, which is most of the ledger's cost per job. "Now" (due, start, lease) is the
    database's clock, the same for every host whatever their own clocks say.
    """
    table = connection.ops.quote_name(JobRun._meta.db_table)
    # A paused queue's run stays queued, untouched: it starts once the queue is resumed (the
    # broker stops delivering them; this covers runs already in a cluster's memory).
    paused = sorted(queues_paused())
    not_paused = f"AND queue NOT IN ({', '.join(['%s'] * len(paused))}) " if paused else ""
    sql = (
        f"UPDATE {table} SET status = %s, attempts = attempts + 1, started_at = {now_sql()}, "
        f"lease_expires_at = {later_sql()}, worker = %s, delivered_until = NULL "
        f"WHERE id = %s AND status = %s AND available_at <= {now_sql()} {not_paused}RETURNING *"
    )
    params = [Status.RUNNING, later_param(timeout + grace), worker, run_id, Status.QUEUED, *paused]
    claimed = list(JobRun.objects.raw(sql, params))
    if not claimed:
        return None
    run = claimed[0]
    # The worker's later timestamps (finish, backoff) follow the database's clock from here.
    run._clock = (run.started_at, time.monotonic())
    return run


def run_now(run: JobRun) -> dt.datetime:
    """'Now' on the database's clock for a run this process claimed, without a query."""
    clock = getattr(run, "_clock", None)
    if clock is None:
        return db_now()
    started, at = clock
    return started + dt.timedelta(seconds=time.monotonic() - at)


def run_release_unique_key(*, run: JobRun) -> None:
    JobRun.objects.filter(pk=run.pk).update(unique_active=False)


def run_succeed(*, run: JobRun) -> bool:
    """running -> succeeded; False when this attempt no longer holds the run (stale)."""
    now = run_now(run)
    if run.chain or run.batch_id:
        with transaction.atomic():
            done = _finish(run, status=Status.SUCCEEDED, now=now, last_error="")
            if not done:
                return False
            if run.chain:
                _dispatch_spec(run.chain[0], chain=run.chain[1:], chain_catch=run.chain_catch)
            if run.batch_id:
                batch_member_ended(batch_id=run.batch_id, failed=False)
    # A lone run needs no transaction around its single UPDATE (3 statements fewer on SQLite).
    elif not _finish(run, status=Status.SUCCEEDED, now=now, last_error=""):
        return False
    run.status, run.finished_at = Status.SUCCEEDED, now
    if job_succeeded.has_listeners(JobRun):
        transaction.on_commit(lambda: job_succeeded.send(sender=JobRun, run=run), robust=True)
    return True


def run_error(*, run: JobRun, job, exc: BaseException, permanent: bool) -> str:
    """Record a failed attempt; retry later or fail for good. Returns the new status."""
    now = run_now(run)
    if not permanent and can_retry(run, now):
        delay = backoff_seconds(run, run.attempts)
        with transaction.atomic():
            moved = _requeue(run, now=now, delay=delay, last_error=_describe(exc))
            if moved:
                _attempt_log(run, JobAttempt.Outcome.ERROR, now, exc)
        return Status.QUEUED if moved else run.status
    return run_fail(run=run, job=job, exc=exc, outcome=JobAttempt.Outcome.FAILED)


def run_fail(
    *, run: JobRun, job, exc: BaseException, outcome: str, hooks_inline: bool = True
) -> str:
    """running -> failed for good. `hooks_inline=False` (the guard loop and the sweeper) leaves
    the `failed()` hook and the job_failed listeners to a RunFailedHooksJob in a worker: they
    may wait on the outside world (e-mail, carriers) and must not hold up lease enforcement."""
    now = run_now(run)
    text = _describe(exc)
    with transaction.atomic():
        if not _finish(run, status=Status.FAILED, now=now, last_error=text):
            return run.status
        _attempt_log(run, outcome, now, exc)
        if hooks_inline:
            hook_error = _call_failed_hook(job, exc)
            if hook_error:
                text = f"{text}\n\nfailed() hook raised: {hook_error}"
                JobRun.objects.filter(pk=run.pk).update(last_error=text)
        else:
            from aktina.jobs.jobs import RunFailedHooksJob

            # Same transaction: the failure and the work it causes commit together.
            RunFailedHooksJob(run.pk).on_queue(run.queue).dispatch()
        if run.chain_catch:
            _dispatch_spec(run.chain_catch)
        if run.batch_id:
            batch_member_ended(batch_id=run.batch_id, failed=True)
    run.status, run.last_error, run.finished_at = Status.FAILED, text, now
    if hooks_inline:
        run_failed_announce(run=run, exception_text=text)
    return Status.FAILED


def run_failed_announce(*, run: JobRun, exception_text: str) -> None:
    """Tell job_failed listeners (operations' notification), after commit and robustly: the
    run is failed in the ledger whatever a listener does."""
    if job_failed.has_listeners(JobRun):
        transaction.on_commit(
            lambda: job_failed.send(sender=JobRun, run=run, exception_text=exception_text),
            robust=True,
        )


def run_failed_hooks_call(*, run: JobRun, exc: BaseException) -> None:
    """The deferred half of `run_fail(hooks_inline=False)`, run by RunFailedHooksJob."""
    from aktina.jobs.worker import job_for_run

    try:
        job = job_for_run(run)
    except Exception:  # noqa: BLE001 - unbuildable: only the hook is lost, listeners still hear
        job = None
    text = run.last_error
    hook_error = _call_failed_hook(job, exc)
    if hook_error:
        text = f"{text}\n\nfailed() hook raised: {hook_error}"
        JobRun.objects.filter(pk=run.pk).update(last_error=text)
    job_failed.send(sender=JobRun, run=run, exception_text=text)


def run_release(*, run: JobRun, delay: float) -> bool:
    """Back to the queue without spending the attempt (rate limited, overlapping, asked)."""
    now = run_now(run)
    return bool(_requeue(run, now=now, delay=delay, last_error=run.last_error, refund_attempt=True))


def run_expire(*, run: JobRun, job, now: dt.datetime) -> str:
    """The lease ran out (`now` on the database's clock): the run timed out or its worker died.
    That was an attempt. Called from the guard loop and the sweeper: it only writes rows."""
    exc = _lease_error(run)
    run._clock = (now, time.monotonic())
    if can_retry(run, now):
        with transaction.atomic():
            moved = _requeue(
                run,
                now=now,
                delay=backoff_seconds(run, run.attempts),
                last_error=str(exc),
            )
            if moved:
                _attempt_log(run, JobAttempt.Outcome.TIMED_OUT, now, exc, with_traceback=False)
        return Status.QUEUED
    return run_fail(
        run=run, job=job, exc=exc, outcome=JobAttempt.Outcome.TIMED_OUT, hooks_inline=False
    )


def run_drop(*, run: JobRun, reason: str) -> str:
    """End a claimed run as cancelled: its work no longer applies (its rows are gone)."""
    with transaction.atomic():
        if not _finish(run, status=Status.CANCELLED, now=run_now(run), last_error=reason):
            return run.status
        if run.batch_id:
            batch_member_ended(batch_id=run.batch_id, failed=False)
    return Status.CANCELLED


def run_cancel(*, run: JobRun) -> JobRun:
    """Cancel a queued or delayed run. A running run cannot be stopped from outside."""
    now = timezone.now()
    with transaction.atomic():
        updated = JobRun.objects.filter(pk=run.pk, status=Status.QUEUED).update(
            status=Status.CANCELLED, finished_at=now, unique_active=False
        )
        if not updated:
            run.refresh_from_db()
            raise RunNotChangeable(
                f"Run #{run.pk} is {run.status}; only queued runs can be cancelled."
            )
        if run.batch_id:
            batch_member_ended(batch_id=run.batch_id, failed=False)
    run.refresh_from_db()
    return run


def batch_member_ended(*, batch_id, failed: bool) -> None:
    """Count a member's end; fire catch on the first failure, then/finally when none remain.

    Runs inside the member's own transaction; the UPDATE locks the batch row until commit, so
    concurrent members see each other's counts and each callback fires exactly once.
    """
    JobBatch.objects.filter(pk=batch_id).update(
        pending=F("pending") - 1, failed=F("failed") + (1 if failed else 0)
    )
    batch = JobBatch.objects.get(pk=batch_id)
    if failed and batch.failed == 1 and batch.catch_spec:
        _dispatch_spec(batch.catch_spec)
    if batch.pending == 0:
        batch_close(batch=batch)


def batch_close(*, batch: JobBatch) -> None:
    JobBatch.objects.filter(pk=batch.pk).update(finished_at=timezone.now())
    if batch.failed == 0 and not batch.cancelled and batch.then_spec:
        _dispatch_spec(batch.then_spec)
    if batch.finally_spec:
        _dispatch_spec(batch.finally_spec)


def _finish(run: JobRun, *, status: str, now: dt.datetime, last_error: str) -> bool:
    # `attempts` pins the attempt this process owns: a run the sweeper already took back
    # (lease expired) and restarted elsewhere is not ours to finish. Raw SQL: this runs once
    # per job and the ORM's query building costs more than the statement itself.
    table = connection.ops.quote_name(JobRun._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET status = %s, finished_at = %s, lease_expires_at = NULL, "
            "unique_active = %s, last_error = %s WHERE id = %s AND status = %s AND attempts = %s",
            [
                status,
                connection.ops.adapt_datetimefield_value(now),
                False,
                last_error,
                run.pk,
                Status.RUNNING,
                run.attempts,
            ],
        )
        return cursor.rowcount == 1


def _requeue(
    run: JobRun,
    *,
    now: dt.datetime,
    delay: float,
    last_error: str,
    refund_attempt: bool = False,
) -> bool:
    fields = {
        "status": Status.QUEUED,
        "available_at": now + dt.timedelta(seconds=delay),
        "delivered_until": None,
        "lease_expires_at": None,
        "last_error": last_error,
    }
    if refund_attempt:
        fields["attempts"] = F("attempts") - 1
    moved = JobRun.objects.filter(pk=run.pk, status=Status.RUNNING, attempts=run.attempts).update(
        **fields
    )
    return bool(moved)


def _dispatch_spec(spec: dict, **kwargs) -> None:
    from aktina.jobs.dispatching import run_dispatch

    run_dispatch(spec=spec, **kwargs)


def _attempt_log(
    run: JobRun, outcome: str, now: dt.datetime, exc: BaseException, with_traceback: bool = True
) -> None:
    JobAttempt.objects.create(
        run=run,
        number=run.attempts,
        outcome=outcome,
        started_at=run.started_at,
        finished_at=now,
        worker=run.worker,
        error=_describe(exc),
        error_class=f"{type(exc).__module__}.{type(exc).__qualname__}",
        traceback=redact("".join(tb.format_exception(exc))) if with_traceback else "",
    )


def _call_failed_hook(job, exc: BaseException) -> str:
    if job is None:
        return ""
    try:
        # A savepoint: a broken hook must not undo marking the run failed.
        with transaction.atomic():
            job.failed(exc)
    except Exception as hook_exc:
        logger.exception("failed() hook of %s raised", job.job_name)
        return _describe(hook_exc)
    return ""


def _lease_error(run: JobRun):
    from aktina.jobs.exceptions import JobTimedOut

    return JobTimedOut(
        f"Attempt {run.attempts} did not finish within its {run.timeout}s timeout "
        f"(timed out, or worker {run.worker or '?'} died)."
    )


def _describe(exc: BaseException) -> str:
    # Stored and shown to operators: credentials in an exception message stop here.
    return redact(f"{type(exc).__name__}: {exc}")
