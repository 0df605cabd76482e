"""Writing runs into the ledger. The broker hears about them only after the caller commits."""

from __future__ import annotations

import datetime as dt

from django.db import IntegrityError, transaction
from django.utils import timezone

from aktina.jobs.broker import messages_send
from aktina.jobs.models import JobBatch, JobRun
from aktina.jobs.queues import cluster_for
from aktina.jobs.signals import job_dispatched
from aktina.jobs.tagging import run_tags_write


def run_dispatch(
    *,
    spec: dict,
    chain: list[dict] | None = None,
    chain_catch: dict | None = None,
    batch: JobBatch | None = None,
) -> JobRun:
    """Create the run for `spec` in the caller's transaction; returns the existing run instead
    when the spec is unique and a run with its key is still active."""
    run = _run_build(spec, chain=chain, chain_catch=chain_catch, batch=batch)
    if run.unique_key:
        existing = _run_insert_unique(run)
        if existing is not None:
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
        # Due runs get their message right after commit; delayed ones when the sweeper
        # promotes them.
        sent_at=now if available_at <= now else None,
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
    if not runs:
        return
    due = [(r.pk, r.queue, r.timeout) for r in runs if r.sent_at is not None]

    def announce() -> None:
        if due:
            messages_send(due)
        for run in runs:
            job_dispatched.send(sender=JobRun, run=run)

    transaction.on_commit(announce)
