"""Every state change of a run, each a conditional UPDATE so that only one process makes it.

queued --claim--> running --succeed--> succeeded     (batched: runs_complete)
                          --retry----> queued (later)     --fail--> failed
                          --release--> queued (attempt not counted)
                          --hand back--> queued / failed  (holder died: counted or refunded)
                          --terminate--> cancelled        (an operator stopped it)
queued --cancel--> cancelled;  operators' retries: aktina.jobs.retrying

The bottom layer of the job runtime: it imports no execution or cluster module. Above it,
aktina.jobs.worker executes claimed runs; above that, the cluster (broker, completer, sentinel)
claims, completes and rescues them.
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
from aktina.jobs.dispatching import run_dispatch
from aktina.jobs.exceptions import JobNotRegistered, JobTerminated, JobTimedOut
from aktina.jobs.job import registered_job
from aktina.jobs.models import JobAttempt, JobBatch, JobRun
from aktina.jobs.pausing import queues_paused
from aktina.jobs.serialization import load_arguments
from aktina.jobs.signals import job_failed, job_succeeded

logger = logging.getLogger("aktina.jobs")

Status = JobRun.Status
# Runs the failed() hook and job_failed listeners of a run ended by a guard loop or a sweeper
# (aktina.jobs.jobs); looked up by name so that this bottom layer imports no job module.
FAILED_HOOKS_JOB = "aktina.jobs.jobs.RunFailedHooksJob"


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


def runs_claim(*, queues: list[str], limit: int, holder_id: int, worker: str) -> list[JobRun]:
    """queued -> running for up to `limit` due runs of `queues`, held by the cluster process
    `holder_id`: the cluster's whole dequeue is this one statement, and its workers claim
    nothing themselves. Returned in delivery order (priority, then available_at, then id).

    No lease: a held run is its holder's while the holder's heartbeat is fresh (django-q2
    enforces each run's timeout from the moment a worker starts it); once the heartbeat is
    stale, any live cluster hands it back (aktina.jobs.processes). Started at the database's
    clock; the worker records its own start when it completes the run.
    """
    if not queues or limit <= 0:
        return []
    table = connection.ops.quote_name(JobRun._meta.db_table)
    in_queues = ", ".join(["%s"] * len(queues))
    postgres = connection.vendor == "postgresql"
    # PostgreSQL: SKIP LOCKED lets clusters split the due rows. SQLite: the UPDATE takes the
    # database's write lock for the whole statement, so two clusters never claim the same run.
    lock = " FOR UPDATE SKIP LOCKED" if postgres else ""
    # Walk the partial index in delivery order and stop after `limit` rows; without stats
    # SQLite would rather sort every due run on each poll (a long backlog's worth).
    index = "" if postgres else " INDEXED BY jobrun_dequeue"
    sql = (
        f"UPDATE {table} SET status = %s, attempts = attempts + 1, started_at = {now_sql()}, "
        "lease_expires_at = NULL, worker = %s, holder_id = %s, delivered_until = NULL "
        "WHERE id IN ("
        # The status as a literal: a bound parameter would keep SQLite's planner from using the
        # partial index (WHERE status = 'queued').
        f"SELECT id FROM {table}{index} WHERE status = '{Status.QUEUED.value}' "
        f"AND queue IN ({in_queues}) AND available_at <= {now_sql()} "
        f"ORDER BY priority DESC, available_at, id LIMIT %s{lock}"
        ") RETURNING *"
    )
    claimed = list(JobRun.objects.raw(sql, [Status.RUNNING, worker, holder_id, *queues, limit]))
    at = time.monotonic()
    for run in claimed:
        # CLOCK_MONOTONIC is the host's, shared by its processes: the worker that runs this
        # run follows the database's clock from here without a query.
        run._clock = (run.started_at, at)
    # RETURNING follows no particular order.
    claimed.sort(key=lambda r: (-r.priority, r.available_at, r.pk))
    return claimed


def run_claim(*, run_id: int, timeout: int, worker: str, grace: int) -> JobRun | None:
    """queued -> running for one due run, outside any cluster (`perform`: tests, `work_off`,
    the shell); returns the claimed run, or None when it is not ours.

    Such a run has no holder, so it gets a lease instead: `timeout + grace` on the database's
    clock, after which the sweeper takes it back. One UPDATE ... RETURNING.
    """
    table = connection.ops.quote_name(JobRun._meta.db_table)
    # A paused queue's run stays queued, untouched: it starts once the queue is resumed (the
    # broker stops delivering them; this covers runs already in a cluster's memory).
    paused = sorted(queues_paused())
    not_paused = f"AND queue NOT IN ({', '.join(['%s'] * len(paused))}) " if paused else ""
    sql = (
        f"UPDATE {table} SET status = %s, attempts = attempts + 1, started_at = {now_sql()}, "
        f"lease_expires_at = {later_sql()}, worker = %s, holder_id = NULL, delivered_until = NULL "
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


def runs_complete(*, runs: list[JobRun]) -> list[JobRun]:
    """running -> succeeded for many runs in one transaction: one fenced UPDATE for all of them,
    then the chain links and batch bookkeeping of those that were still this attempt's; the
    job_succeeded listeners hear after commit. Returns the runs completed; the others had lost
    their attempt (handed back, terminated) and are left as they are.

    Each row is fenced by id + attempt + status = running, so a stale attempt (its run handed
    back and claimed again) cannot finish a run through the batch either.
    """
    if not runs:
        return []
    table = connection.ops.quote_name(JobRun._meta.db_table)
    postgres = connection.vendor == "postgresql"
    adapt = connection.ops.adapt_datetimefield_value
    if postgres:
        row = "(%s::bigint, %s::integer, %s::timestamptz, %s::timestamptz, %s::varchar)"
    else:
        row = "(%s, %s, %s, %s, %s)"
    params: list = []
    for run in runs:
        params += [run.pk, run.attempts, adapt(run.started_at), adapt(run.finished_at), run.worker]
    sql = (
        "WITH v(id, attempt, started_at, finished_at, worker) AS (VALUES "
        + ", ".join([row] * len(runs))
        + f") UPDATE {table} SET status = %s, started_at = v.started_at, "
        "finished_at = v.finished_at, worker = v.worker, lease_expires_at = NULL, "
        "unique_active = %s, last_error = '', holder_id = NULL FROM v "
        f"WHERE {table}.id = v.id AND {table}.attempts = v.attempt AND {table}.status = %s "
        f"RETURNING {table}.id"
    )
    params += [Status.SUCCEEDED, False, Status.RUNNING]
    by_id = {run.pk: run for run in runs}
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            done = [by_id[pk] for (pk,) in cursor.fetchall()]
        for run in done:
            if run.chain:
                _dispatch_spec(run.chain[0], chain=run.chain[1:], chain_catch=run.chain_catch)
            if run.batch_id:
                batch_member_ended(batch_id=run.batch_id, failed=False)
    for run in done:
        run.status = Status.SUCCEEDED
    if done and job_succeeded.has_listeners(JobRun):
        for run in done:
            transaction.on_commit(
                lambda run=run: job_succeeded.send(sender=JobRun, run=run), robust=True
            )
    return done


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
    *,
    run: JobRun,
    job,
    exc: BaseException,
    outcome: str,
    hooks_inline: bool = True,
    status: str = Status.FAILED,
) -> str:
    """running -> failed for good (or cancelled: an operator terminated it, with the same
    clean-up). `hooks_inline=False` (the guard loop and the sweeper) leaves the `failed()` hook
    and the job_failed listeners to a RunFailedHooksJob in a worker: they may wait on the
    outside world (e-mail, carriers) and must not hold up lease enforcement."""
    now = run_now(run)
    text = _describe(exc)
    with transaction.atomic():
        if not _finish(run, status=status, now=now, last_error=text):
            return run.status
        _attempt_log(run, outcome, now, exc)
        if hooks_inline:
            hook_error = _call_failed_hook(job, exc)
            if hook_error:
                text = f"{text}\n\nfailed() hook raised: {hook_error}"
                JobRun.objects.filter(pk=run.pk).update(last_error=text)
        else:
            # Same transaction: the failure and the work it causes commit together.
            registered_job(FAILED_HOOKS_JOB)(run.pk).on_queue(run.queue).dispatch()
        if run.chain_catch:
            _dispatch_spec(run.chain_catch)
        if run.batch_id:
            batch_member_ended(batch_id=run.batch_id, failed=True)
    run.status, run.last_error, run.finished_at = status, text, now
    if hooks_inline:
        run_failed_announce(run=run, exception_text=text)
    return status


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


def run_expire(*, run: JobRun, job, now: dt.datetime, exc: BaseException | None = None) -> str:
    """The lease ran out (`now` on the database's clock), or the process running the run died
    or timed out (`exc` says which). That was an attempt. Called from the guard loop, the
    rescue of dead holders and the sweeper: it only writes rows."""
    exc = exc or _lease_error(run)
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


def run_hand_back(*, run: JobRun, reason: str, counted: bool, now: dt.datetime) -> str:
    """Take a held run back from a process that will not finish it. `counted`: it was in a
    worker's hands (died, timed out): an attempt, retried or failed as `tries` allows, so a
    poison pill stops. Not counted: it never reached a worker (it waited in the memory of a
    cluster that died or stopped), so it is simply queued again, due now."""
    if counted:
        return run_expire(run=run, job=_job_or_none(run), now=now, exc=JobTimedOut(reason))
    run._clock = (now, time.monotonic())
    moved = _requeue(run, now=now, delay=0, last_error=run.last_error, refund_attempt=True)
    return Status.QUEUED if moved else run.status


def run_terminate(*, run: JobRun, by: str) -> JobRun:
    """Ask for a running run to be stopped: the guard loop of the cluster that holds it kills
    the worker running it (as for a timeout) and ends the run cancelled, with the clean-up of
    a failure the job cannot retry (`failed()`, catch, batch). Raises RunNotChangeable unless
    the run is running in a cluster."""
    asked = JobRun.objects.filter(pk=run.pk, status=Status.RUNNING, holder_id__isnull=False).update(
        terminate_requested_by=by[:150] or "?"
    )
    run.refresh_from_db()
    if not asked:
        raise RunNotChangeable(
            f"Run #{run.pk} is {run.status}"
            + ("" if run.status != Status.RUNNING else " outside any cluster (no holder)")
            + "; only a run running in a cluster can be terminated."
        )
    return run


def run_terminated(*, run: JobRun, now: dt.datetime) -> str:
    """End a run whose termination was asked (its worker is stopped): cancelled, by whom."""
    run._clock = (now, time.monotonic())
    exc = JobTerminated(f"Terminated by {run.terminate_requested_by or 'an operator'}.")
    return run_fail(
        run=run,
        job=_job_or_none(run),
        exc=exc,
        outcome=JobAttempt.Outcome.FAILED,
        hooks_inline=False,
        status=Status.CANCELLED,
    )


def job_for_run(run: JobRun):
    """Rebuild the job instance of a run, from registered job classes only."""
    cls = registered_job(run.job_name)
    if cls is None:
        # Data, not code: a tampered or stale row cannot make us import anything.
        raise JobNotRegistered(f"{run.job_name!r} is not a registered job class.")
    args, kwargs = load_arguments(run.payload)
    job = cls(*args, **kwargs)
    job.attempt, job.run = run.attempts, run
    return job


def _job_or_none(run: JobRun):
    try:
        return job_for_run(run)
    except Exception:  # noqa: BLE001 - the run still ends; only its failed() hook is lost
        return None


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
            "unique_active = %s, last_error = %s, worker = %s, holder_id = NULL "
            "WHERE id = %s AND status = %s AND attempts = %s",
            [
                status,
                connection.ops.adapt_datetimefield_value(now),
                False,
                last_error,
                run.worker,
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
        "holder_id": None,
        "terminate_requested_by": "",
    }
    if refund_attempt:
        fields["attempts"] = F("attempts") - 1
    moved = JobRun.objects.filter(pk=run.pk, status=Status.RUNNING, attempts=run.attempts).update(
        **fields
    )
    return bool(moved)


def _dispatch_spec(spec: dict, **kwargs) -> None:
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
    return JobTimedOut(
        f"Attempt {run.attempts} did not finish within its {run.timeout}s timeout "
        f"(timed out, or worker {run.worker or '?'} died)."
    )


def _describe(exc: BaseException) -> str:
    # Stored and shown to operators: credentials in an exception message stop here.
    return redact(f"{type(exc).__name__}: {exc}")
