"""The job layer's own jobs (found by the `jobs` autodiscovery: every worker knows them)."""

from __future__ import annotations

from aktina.jobs.exceptions import JobTerminated, JobTimedOut
from aktina.jobs.job import Job
from aktina.jobs.lifecycle import FAILED_HOOKS_JOB, run_failed_hooks_call
from aktina.jobs.models import JobRun
from aktina.jobs.rawtasks import DjangoQTask

__all__ = ["DjangoQTask", "RunFailedHooksJob"]


class RunFailedHooksJob(Job):
    """A run whose lease ran out for the last time, whose worker died on its last attempt, or
    that an operator terminated: its `failed()` hook and the job_failed listeners, run in a
    worker rather than in the guard loop that ended the run."""

    timeout = 120
    tries = 3
    backoff = [10, 60]
    # The hooked run's own failure notice is what this job sends.
    notify_operations_on_failure = True

    def __init__(self, run_id: int):
        self.run_id = run_id

    def handle(self) -> None:
        ended = JobRun.objects.filter(
            pk=self.run_id, status__in=[JobRun.Status.FAILED, JobRun.Status.CANCELLED]
        ).first()
        if ended is None:
            return  # retried by an operator meanwhile, or pruned
        error = JobTerminated if ended.status == JobRun.Status.CANCELLED else JobTimedOut
        run_failed_hooks_call(run=ended, exc=error(ended.last_error))


assert RunFailedHooksJob.job_name == FAILED_HOOKS_JOB
