"""What a django-q2 worker runs for every message: execute a run its cluster already claimed,
and record how it ended.

The cluster claims runs in batches (aktina.jobs.broker) and its completer writes successes in
batches (aktina.jobs.completer): a successful run costs the worker no statement at all. Errors,
retries and releases are written here, one statement (or transaction) each: they are rare, and
their attempt log and backoff need the job.

`perform` (one run by id: tests, `work_off`, the shell) claims the run itself and writes its
success at once, through the same execution code.
"""

from __future__ import annotations

import enum
import logging
import os
import socket
import uuid

from django.conf import settings

from aktina.jobs.exceptions import PermanentError, Release
from aktina.jobs.job import registered_job
from aktina.jobs.lifecycle import (
    job_for_run,
    run_claim,
    run_drop,
    run_error,
    run_fail,
    run_now,
    run_release,
    run_release_unique_key,
    run_succeed,
)
from aktina.jobs.models import JobAttempt, JobRun
from aktina.jobs.serialization import ModelMissing
from aktina.jobs.signals import job_started
from aktina.jobs.tasks_backend import is_task_run, task_run_execute

__all__ = ["Outcome", "execute", "job_for_run", "perform", "perform_claimed", "worker_id"]

logger = logging.getLogger("aktina.jobs")


class Outcome(enum.StrEnum):
    """How one delivery of a run ended, as `perform` reports it."""

    SUCCEEDED = "succeeded"
    # Succeeded; the completer writes it with others in one statement (cluster path only).
    COMPLETING = "completing"
    QUEUED = "queued"  # retried later, or released
    FAILED = "failed"
    CANCELLED = "cancelled"
    # The attempt no longer held the run when it ended (handed back, terminated).
    STALE = "stale"
    # Not claimed: running elsewhere, finished, cancelled, paused or not yet due.
    SKIPPED = "skipped"


# Kept for callers of the old string.
STALE = Outcome.STALE

BOOT_ENV = "AKTINA_WORKER_BOOT"
# One id per qcluster start (set by the command), shared by its children through the
# environment so the sentinel can name its dead workers; containers that share a hostname and
# small pids still differ. Other processes get one per process.
_boot = uuid.uuid4().hex[:12]

# The shared-memory cell of this worker process in which it shows its cluster's guard loop the
# run it is executing (0: none). Set by the sentinel before it forks the worker.
current_run = None


def boot_id() -> str:
    return os.environ.get(BOOT_ENV) or _boot


def worker_id(pid: int | None = None, boot: str | None = None) -> str:
    """How a run records the process running it: host, `pid` (default: this one), and the
    start of the cluster it belongs to."""
    return f"{socket.gethostname()}:{pid or os.getpid()}:{boot or boot_id()}"


def perform(run_id: int, timeout: int) -> Outcome:
    """Claim run `run_id` and execute it here, outside any cluster (tests, `work_off`)."""
    run = run_claim(
        run_id=run_id, timeout=timeout, worker=worker_id(), grace=settings.JOBS_LEASE_GRACE_SECONDS
    )
    if run is None:
        return Outcome.SKIPPED
    return execute(run)


def perform_claimed(run: JobRun) -> Outcome:
    """Entry point of every broker message: a run the cluster claimed for this worker."""
    run.worker = worker_id()
    run.started_at = run_now(run)  # when this worker started it, on the database's clock
    cell = current_run
    if cell is not None:
        cell.value = run.pk
    outcome = execute(run, defer_success=True)
    # Cleared only on return: after sys.exit, django-q2's timeout or any other BaseException the
    # cell still names the run, and the guard loop hands it back.
    if cell is not None:
        cell.value = 0
    return outcome


def execute(run: JobRun, *, defer_success: bool = False) -> Outcome:
    """Run one claimed attempt of `run` and record how it ended. `defer_success`: leave a
    success to the cluster's completer (it reads the run from the finished message)."""
    job_started.send(sender=JobRun, run=run)
    if run.unique_until_processing and run.unique_active:
        run_release_unique_key(run=run)
    if is_task_run(run):  # a Django @task function (aktina.jobs.tasks_backend)
        return _outcome(task_run_execute(run), run)
    job = _job_build(run)
    if isinstance(job, str):
        return _outcome(job, run)
    held = []
    try:
        for middleware in job.middleware():
            delay = middleware.acquire(job)
            if delay is not None:
                raise Release(delay)
            held.append(middleware)
        job.handle()
    except Release as release:
        run_release(run=run, delay=release.delay)
        return Outcome.QUEUED
    except PermanentError as exc:
        return _outcome(run_error(run=run, job=job, exc=exc, permanent=True), run)
    except Exception as exc:  # noqa: BLE001 - any other error is a temporary one by contract
        logger.warning("job %s #%s attempt %s raised %r", run.job_name, run.pk, run.attempts, exc)
        return _outcome(run_error(run=run, job=job, exc=exc, permanent=False), run)
    finally:
        for middleware in reversed(held):
            middleware.release(job)
    if defer_success:
        run.finished_at = run_now(run)
        return Outcome.COMPLETING
    if not run_succeed(run=run):
        # The lease ran out under us and the run was taken back (and maybe run again): this
        # attempt's success is not the run's.
        logger.warning(
            "job %s #%s attempt %s finished after losing its lease",
            run.job_name,
            run.pk,
            run.attempts,
        )
        return Outcome.STALE
    return Outcome.SUCCEEDED


def _outcome(status: str, run: JobRun) -> Outcome:
    # A lifecycle step returns the run's status; one it could not make returns the status the
    # run still had in memory (running): this attempt no longer held it.
    if status == JobRun.Status.RUNNING:
        logger.warning("job %s #%s attempt %s ended stale", run.job_name, run.pk, run.attempts)
        return Outcome.STALE
    return Outcome(status)


def _job_build(run: JobRun):
    try:
        return job_for_run(run)
    except ModelMissing as exc:
        cls = registered_job(run.job_name)
        if cls is not None and cls.delete_when_missing_models:
            return run_drop(run=run, reason=f"Cancelled: {exc}")
        return run_fail(run=run, job=None, exc=exc, outcome=JobAttempt.Outcome.FAILED)
    except Exception as exc:  # noqa: BLE001 - an unbuildable job can never succeed
        return run_fail(run=run, job=None, exc=exc, outcome=JobAttempt.Outcome.FAILED)
