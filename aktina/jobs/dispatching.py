"""Writing runs into the ledger: one INSERT in the caller's transaction is the whole dispatch.

The ledger is the broker's queue (aktina.jobs.broker), so a committed run is already visible to
every cluster and a rolled-back one never existed.
"""

from __future__ import annotations

import datetime as dt

from django.db import IntegrityError, transaction
from django.utils import timezone

from aktina.jobs.models import JobBatch, JobRun
from aktina.jobs.queues import cluster_for
from aktina.jobs.signals import job_dispatched
from aktina.jobs.tagging import run_tags_write


class UniqueRunActive(Exception):
    """A chain's first link is unique and its key is held by an active run."""

    def __init__(self, holder: JobRun):
        self.holder = holder
        super().__init__(
            f"Chain not dispatched: its first link's unique key {holder.unique_key!r} is held by "
            f"active run #{holder.pk}; dispatch the chain again once that run has ended."
        )


def run_dispatch(
    *,
    spec: dict,
    chain: list[dict] | None = None,
    chain_catch: dict | None = None,
    batch: JobBatch | None = None,
) -> JobRun:
    """Create the run for `spec` in the caller's transaction; returns the existing run instead
    when the spec is unique and a run with its key is still active.

    A chain (or a link with a catch) whose first link is held that way raises UniqueRunActive:
    the active run knows nothing of the rest of the chain, and attaching it there would change
    what a run already under way does next.
    """
    run = _run_build(spec, chain=chain, chain_catch=chain_catch, batch=batch)
    if run.unique_key:
        existing = _run_insert_unique(run)
        if existing is not None:
            if chain or chain_catch:
                raise UniqueRunActive(existing)
            return existing
    else:
        run.save(force_insert=True)
    run_tags_write(runs=[(run, spec)])
    _after_commit_announce([run])
    return run


def runs_dispatch_many(*, specs: list[dict], batch: JobBatch | None = None) -> list[JobRun]:
    """Create many runs with one INSERT; unique specs go through `run_dispatch` one by one."""
    plain_specs = [s for s in specs if not s.get("unique_key")]
    plain = [_run_build(s, batch=batch) for s in plain_specs]
    JobRun.objects.bulk_create(plain)
    run_tags_write(runs=zip(plain, plain_specs, strict=True))
    _after_commit_announce(plain)
    unique = [run_dispatch(spec=s, batch=batch) for s in specs if s.get("unique_key")]
    return plain + unique


def _run_build(
    spec: dict,
    *,
    chain: list[dict] | None = None,
    chain_catch: dict | None = None,
    batch: JobBatch | None = None,
) -> JobRun:
    cluster_for(spec["queue"])  # refuses an unknown queue now, not in a worker later
    now = timezone.now()
    available_at = now + dt.timedelta(seconds=spec.get("delay") or 0)
    retry_for = spec.get("retry_for")
    unique_for = spec.get("unique_for")
    return JobRun(
        job_name=spec["job"],
        queue=spec["queue"],
        payload=spec["payload"],
        tries=spec["tries"],
        timeout=spec["timeout"],
        backoff=spec["backoff"],
        retry_until=now + dt.timedelta(seconds=retry_for) if retry_for else None,
        unique_key=spec.get("unique_key"),
        unique_active=bool(spec.get("unique_key")),
        unique_until=now + dt.timedelta(seconds=unique_for) if unique_for else None,
        unique_until_processing=spec.get("unique_until_processing", False),
        chain=chain or [],
        chain_catch=chain_catch,
        batch=batch,
        retry_of_id=spec.get("retry_of"),
        created_at=now,
        available_at=available_at,
        priority=int(spec.get("priority") or 0),
    )


def _run_insert_unique(run: JobRun) -> JobRun | None:
    """Insert a unique run, or return the active run that holds its key."""
    for _ in range(3):
        try:
            with transaction.atomic():
                run.save(force_insert=True)
            return None
        except IntegrityError:
            run.pk = None
            holder = JobRun.objects.filter(unique_key=run.unique_key, unique_active=True).first()
            if holder is None:
                continue  # released between our insert and our look: try again
            if holder.unique_until and holder.unique_until <= timezone.now():
                # `unique_for` elapsed: the key no longer blocks new dispatches.
                JobRun.objects.filter(pk=holder.pk).update(unique_active=False)
                continue
            return holder
    raise IntegrityError(f"Could not take unique key {run.unique_key!r}")


def _after_commit_announce(runs: list[JobRun]) -> None:
    # Only listeners hear of it after commit (nothing in the ledger depends on it); robust: a
    # failing receiver is logged and neither fails the caller nor stops other callbacks.
    if not runs or not job_dispatched.has_listeners(JobRun):
        return

    def announce() -> None:
        for run in runs:
            job_dispatched.send(sender=JobRun, run=run)

    transaction.on_commit(announce, robust=True)
