"""What a django-q2 worker runs for every message: claim the run, execute it, record the end.

`perform` never raises for a job's own failure: the ledger, not django-q2, keeps errors.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid

from django.conf import settings

from aktina.jobs.exceptions import JobNotRegistered, PermanentError, Release
from aktina.jobs.job import registered_job
from aktina.jobs.lifecycle import (
    run_claim,
    run_drop,
    run_error,
    run_fail,
    run_release,
    run_release_unique_key,
    run_succeed,
)
from aktina.jobs.models import JobAttempt, JobRun
from aktina.jobs.serialization import ModelMissing, load_arguments
from aktina.jobs.signals import job_started
from aktina.jobs.tasks_backend import is_task_run, task_run_execute

logger = logging.getLogger("aktina.jobs")
# What `perform`/`execute` report for an attempt that no longer held the run when it ended.
STALE = "stale"


BOOT_ENV = "AKTINA_WORKER_BOOT"
# One id per qcluster start (set by the command), shared by its children through the
# environment so the sentinel can name its dead workers; containers that share a hostname and
# small pids still differ. Other processes get one per process.
_boot = uuid.uuid4().hex[:12]


def boot_id() -> str:
    return os.environ.get(BOOT_ENV) or _boot


def worker_id(pid: int | None = None, boot: str | None = None) -> str:
    """How a run records the process running it: host, `pid` (default: this one), and the
    start of the cluster it belongs to."""
    return f"{socket.gethostname()}:{pid or os.getpid()}:{boot or boot_id()}"


def perform(run_id: int, timeout: int) -> str:
    """Entry point of every broker message. Returns the run's status after this delivery."""
    run = run_claim(
        run_id=run_id, timeout=timeout, worker=worker_id(), grace=settings.JOBS_LEASE_GRACE_SECONDS
    )
    if run is None:
        # Already running elsewhere, finished, cancelled, or not yet due: a duplicate delivery.
        return "skipped"
    return execute(run)


def execute(run: JobRun) -> str:
    """Run one claimed attempt of `run` and record how it ended."""
    job_started.send(sender=JobRun, run=run)
    if run.unique_until_processing and run.unique_active:
        run_release_unique_key(run=run)
    if is_task_run(run):  # a Django @task function (aktina.jobs.tasks_backend)
        return task_run_execute(run)
    job = _job_build(run)
    if isinstance(job, str):
        return job
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
        return JobRun.Status.QUEUED
    except PermanentError as exc:
        return run_error(run=run, job=job, exc=exc, permanent=True)
    except Exception as exc:  # noqa: BLE001 - any other error is a temporary one by contract
        logger.warning("job %s #%s attempt %s raised %r", run.job_name, run.pk, run.attempts, exc)
        return run_error(run=run, job=job, exc=exc, permanent=False)
    finally:
        for middleware in reversed(held):
            middleware.release(job)
    if not run_succeed(run=run):
        # The lease ran out under us and the run was taken back (and maybe run again): this
        # attempt's success is not the run's.
        logger.warning(
            "job %s #%s attempt %s finished after losing its lease",
            run.job_name,
            run.pk,
            run.attempts,
        )
        return STALE
    return JobRun.Status.SUCCEEDED


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
