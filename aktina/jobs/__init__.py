"""The job layer: Laravel-style jobs with a durable ledger on top of django-q2.

Application code imports everything it needs from here (and `aktina.jobs.models`,
`aktina.jobs.tasks_api`, `aktina.jobs.exceptions`), never from the modules behind it:

    from aktina.jobs import Job, PermanentError, RateLimited, WithoutOverlapping, chain, batch
"""

import importlib

from aktina.jobs.exceptions import JobTimedOut, PermanentError
from aktina.jobs.signals import job_dispatched, job_failed, job_started, job_succeeded

# Names whose modules import models, by module. This package is imported while Django is still
# populating INSTALLED_APPS (it holds `aktina.jobs.apps`), before models can be imported, so
# these load on first use (PEP 562) instead of here.
_LAZY = {
    "Job": "aktina.jobs.job",
    "dispatch_many": "aktina.jobs.job",
    "registered_job": "aktina.jobs.job",
    "DispatchSpec": "aktina.jobs.spec",
    "RateLimited": "aktina.jobs.middleware",
    "WithoutOverlapping": "aktina.jobs.middleware",
    "batch": "aktina.jobs.composition",
    "batch_cancel": "aktina.jobs.composition",
    "chain": "aktina.jobs.composition",
    "UniqueRunActive": "aktina.jobs.dispatching",
    "unique_key_release": "aktina.jobs.unique",
    "unique_runs_cancel": "aktina.jobs.unique",
    "runs_tagged": "aktina.jobs.tagging",
    "queue_pause": "aktina.jobs.pausing",
    "queue_resume": "aktina.jobs.pausing",
    "queue_pauses": "aktina.jobs.pausing",
    "runs_retry_matching": "aktina.jobs.retrying",
    "job_stats": "aktina.jobs.selectors",
    "queue_stats": "aktina.jobs.selectors",
    "queue_timeseries": "aktina.jobs.selectors",
    "RunNotChangeable": "aktina.jobs.lifecycle",
    "run_cancel": "aktina.jobs.lifecycle",
    "run_release_unique_key": "aktina.jobs.lifecycle",
}

__all__ = [
    "JobTimedOut",
    "PermanentError",
    "job_dispatched",
    "job_failed",
    "job_started",
    "job_succeeded",
    *_LAZY,
]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'aktina.jobs' has no attribute {name!r}")
