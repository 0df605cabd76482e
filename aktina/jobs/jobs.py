"""The job layer's own jobs (found by the `jobs` autodiscovery: every worker knows them)."""

from __future__ import annotations

from aktina.jobs.job import Job
from aktina.jobs.rawtasks import DjangoQTask

__all__ = ["DjangoQTask", "RunFailedHooksJob"]


class RunFailedHooksJob(Job):
    """A run whose lease ran out for the last time: its `failed()` hook and the job_failed
    listeners, run in a worker rather than in the guard loop that noticed the expiry."""

    timeout = 120
    tries = 3
    backoff = [10, 60]
    # The hooked run's own failure notice is what this job sends.
    notify_operations_on_failure = True

    def __init__(self, run_id: int):
        self.run_id = run_id

    def handle(self) -> None:
        from aktina.jobs.exceptions import JobTimedOut
        from aktina.jobs.lifecycle import run_failed_hooks_call
        from aktina.jobs.models import JobRun

        failed = JobRun.objects.filter(pk=self.run_id, status=JobRun.Status.FAILED).first()
        if failed is None:
            return  # retried by an operator meanwhile, or pruned
        run_failed_hooks_call(run=failed, exc=JobTimedOut(failed.last_error))
