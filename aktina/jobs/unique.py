"""Unique keys as a job author handles them: cancel the waiting runs that hold a key, let go of
the key of the run in progress. (Dispatch honours keys in `aktina.jobs.dispatching`.)"""

from __future__ import annotations

from aktina.jobs.lifecycle import RunNotChangeable, run_cancel, run_release_unique_key
from aktina.jobs.models import JobRun


def unique_runs_cancel(*, key: str) -> int:
    """Cancel the queued run holding unique `key` (there is at most one); returns how many were
    cancelled. A run that started meanwhile is left to finish."""
    cancelled = 0
    waiting = JobRun.objects.filter(unique_key=key, unique_active=True, status=JobRun.Status.QUEUED)
    for run in waiting:
        try:
            run_cancel(run=run)
        except RunNotChangeable:
            continue
        cancelled += 1
    return cancelled


def unique_key_release(*, run: JobRun) -> None:
    """Free `run`'s unique key now, in the caller's transaction (a handler that wants the next
    dispatch to queue a fresh run while this one is still finishing)."""
    run_release_unique_key(run=run)
