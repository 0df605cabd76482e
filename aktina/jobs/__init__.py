"""The job layer: Laravel-style jobs with a durable ledger on top of django-q2.

Application code imports everything from here:

    from aktina.jobs import Job, PermanentError, RateLimited, WithoutOverlapping, chain, batch
"""

from aktina.jobs.exceptions import JobTimedOut, PermanentError
from aktina.jobs.signals import job_dispatched, job_failed, job_started, job_succeeded

__all__ = [
    "Job",
    "JobTimedOut",
    "PermanentError",
    "RateLimited",
    "RunNotChangeable",
    "WithoutOverlapping",
    "batch",
    "batch_cancel",
    "chain",
    "job_dispatched",
    "job_failed",
    "job_started",
    "job_succeeded",
    "registered_job",
    "run_cancel",
    "run_release_unique_key",
    "runs_tagged",
]

_LAZY = {
    "Job": "aktina.jobs.job",
    "RateLimited": "aktina.jobs.middleware",
    "WithoutOverlapping": "aktina.jobs.middleware",
    "batch": "aktina.jobs.composition",
    "batch_cancel": "aktina.jobs.composition",
    "chain": "aktina.jobs.composition",
    "RunNotChangeable": "aktina.jobs.lifecycle",
    "run_cancel": "aktina.jobs.lifecycle",
    "run_release_unique_key": "aktina.jobs.lifecycle",
    "runs_tagged": "aktina.jobs.tagging",
    "registered_job": "aktina.jobs.job",
}


def __getattr__(name: str):
    # Models cannot be imported before the app registry is ready; signals and exceptions can.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(name)
