"""Writing runs into the ledger: the INSERT in the caller's transaction is the whole dispatch.

The ledger is the broker's queue (aktina.jobs.broker), so a committed run is already visible to
every cluster and a rolled-back one never existed. On PostgreSQL a dispatching transaction also
sends one `NOTIFY aktina_jobs` (delivered at commit, dropped with a rollback) so that idle
clusters LISTENing on that channel look for work at once; polling still guarantees delivery.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models.expressions import RawSQL
from django.utils import timezone

from aktina.jobs.bulk_insert import runs_insert
from aktina.jobs.models import JobBatch, JobRun
from aktina.jobs.queues import cluster_for
from aktina.jobs.signals import job_dispatched
from aktina.jobs.spec import DispatchSpec
from aktina.jobs.tagging import run_tags_write

# The channel clusters LISTEN on; the notification carries no payload.
WAKE_CHANNEL = "aktina_jobs"

SpecLike = DispatchSpec | Mapping[str, Any]


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
    spec: SpecLike,
    chain: Sequence[SpecLike] | None = None,
    chain_catch: SpecLike | None = None,
    batch: JobBatch | None = None,
) -> JobRun:
    """Create the run for `spec` in the caller's transaction; returns the existing run instead
    when the spec is unique and a run with its key is still active.

    `spec`, `chain` and `chain_catch` are DispatchSpecs, or their stored JSON form (a chain link
    or batch callback read back from the ledger).

    A chain (or a link with a catch) whose first link is held that way raises UniqueRunActive:
    the active run knows nothing of the rest of the chain, and attaching it there would change
    what a run already under way does next.
    """
    spec = DispatchSpec.coerce(spec)
    run = _run_build(
        spec,
        now=timezone.now(),
        chain=[DispatchSpec.coerce(s).to_stored() for s in chain or ()],
        chain_catch=DispatchSpec.coerce(chain_catch).to_stored() if chain_catch else None,
        batch=batch,
    )
    cluster_for(spec.queue)  # refuses an unknown queue now, not in a worker later
    # savepoint=False: inside the caller's transaction this adds no statement; outside one, the
    # run and its tags commit together.
    with transaction.atomic(savepoint=False):
        existing = _run_insert_unique(run) if run.unique_key else None
        if existing is None:
            if not run.unique_key:
                run.save(force_insert=True)
            run_tags_write(runs=[(run, spec)])
            clusters_wake()
            _after_commit_announce([run])
    if existing is None:
        return run
    if chain or chain_catch:
        # Raised outside the atomic block: it refuses this dispatch, not the caller's transaction.
        raise UniqueRunActive(existing)
    return existing


def runs_dispatch_many(*, specs: Sequence[SpecLike], batch: JobBatch | None = None) -> list[JobRun]:
    """Create the runs of many specs with one multi-row INSERT (and their tags with one more);
    returns one run per spec, in order.

    Unique keys are honoured as by `run_dispatch`: a spec whose key an active run holds gets
    that run back, and specs sharing a key within the call collapse to one run (the first).
    Statements: the runs' INSERT, the tags' INSERT (if any run has tags), one SELECT of the
    active holders (if any spec is unique, with a savepoint around the INSERT), and on
    PostgreSQL the transaction's NOTIFY; the same for 10 or 100 000 specs.
    """
    specs = [DispatchSpec.coerce(s) for s in specs]
    if not specs:
        return []
    for queue in {s.queue for s in specs}:
        cluster_for(queue)  # refuses an unknown queue now, not in a worker later
    now = timezone.now()
    first_of_key: dict[str, int] = {}
    for i, spec in enumerate(specs):
        if spec.unique_key is not None:
            first_of_key.setdefault(spec.unique_key, i)
    result: list[JobRun | None] = [None] * len(specs)
    with transaction.atomic(savepoint=False):
        holders = _unique_holders(list(first_of_key), now=now) if first_of_key else {}
        for key, i in first_of_key.items():
            if key in holders:
                result[i] = holders[key]
        fresh = [
            i
            for i, spec in enumerate(specs)
            if spec.unique_key is None
            or (first_of_key[spec.unique_key] == i and spec.unique_key not in holders)
        ]
        new = []
        inserted = _runs_insert([specs[i] for i in fresh], now=now, batch=batch)
        for i, (run, written) in zip(fresh, inserted, strict=True):
            result[i] = run
            if written:
                new.append((run, specs[i]))
        for i, spec in enumerate(specs):
            if result[i] is None:  # a later spec with a key already taken in this call
                result[i] = result[first_of_key[spec.unique_key]]
        run_tags_write(runs=new)
        if new:
            clusters_wake()
        _after_commit_announce([run for run, _ in new])
    return result


def clusters_wake() -> None:
    """On PostgreSQL, `NOTIFY aktina_jobs` once per transaction (a no-op elsewhere).

    Sent inside the transaction, so it is delivered at commit and dropped with a rollback
    (also of a savepoint). A transaction that already sent one sends no other: PostgreSQL folds
    duplicates anyway, but every NOTIFY is a round trip, and the commit of a notifying
    transaction takes a cluster-wide lock on the notification queue.
    """
    if connection.vendor != "postgresql":
        return
    if connection.in_atomic_block:
        if _wake_pending():
            return
        _execute_notify()
        # The marker leaves `run_on_commit` exactly when the NOTIFY does: at commit, or with the
        # rollback of the transaction or of the savepoint it was sent in.
        transaction.on_commit(_wake_marker)
        connection._aktina_wake_at = len(connection.run_on_commit) - 1
    else:
        _execute_notify()


def _execute_notify() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"NOTIFY {WAKE_CHANNEL}")


def _wake_marker() -> None:
    """Registered with on_commit after a NOTIFY; only its presence matters."""


def _wake_pending() -> bool:
    # Callbacks are only appended or removed (never reordered), so the marker, if still there,
    # sits at or before the index it was registered at; usually exactly there.
    callbacks = connection.run_on_commit
    at = getattr(connection, "_aktina_wake_at", None)
    if at is None:
        return False
    return any(callbacks[i][1] is _wake_marker for i in range(min(at, len(callbacks) - 1), -1, -1))


def _run_build(
    spec: DispatchSpec,
    *,
    now: dt.datetime,
    chain: list[dict] | None = None,
    chain_catch: dict | None = None,
    batch: JobBatch | None = None,
) -> JobRun:
    return JobRun(
        job_name=spec.job,
        queue=spec.queue,
        payload=spec.payload,
        tries=spec.tries,
        timeout=spec.timeout,
        backoff=list(spec.backoff),
        retry_until=now + dt.timedelta(seconds=spec.retry_for) if spec.retry_for else None,
        unique_key=spec.unique_key,
        unique_active=bool(spec.unique_key),
        unique_until=now + dt.timedelta(seconds=spec.unique_for) if spec.unique_for else None,
        unique_until_processing=spec.unique_until_processing,
        chain=chain or [],
        chain_catch=chain_catch,
        batch=batch,
        retry_of_id=spec.retry_of,
        created_at=now,
        available_at=now + dt.timedelta(seconds=spec.delay) if spec.delay else now,
        priority=spec.priority,
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


def _unique_holders(keys: list[str], *, now: dt.datetime) -> dict[str, JobRun]:
    """The active runs holding any of `keys`; holders whose `unique_for` elapsed let go."""
    # One statement however many keys: they travel as one array (PostgreSQL) or JSON text.
    if connection.vendor == "postgresql":
        listed = RawSQL("SELECT unnest(%s::text[])", [keys])
    else:
        listed = RawSQL("SELECT value FROM json_each(%s)", [json.dumps(keys)])
    holders = {
        run.unique_key: run
        for run in JobRun.objects.filter(unique_key__in=listed, unique_active=True)
    }
    expired = [r.pk for r in holders.values() if r.unique_until and r.unique_until <= now]
    if expired:
        JobRun.objects.filter(pk__in=expired).update(unique_active=False)
        holders = {k: r for k, r in holders.items() if r.pk not in expired}
    return holders


def _runs_insert(
    specs: list[DispatchSpec], *, now: dt.datetime, batch: JobBatch | None
) -> list[tuple[JobRun, bool]]:
    """Insert the runs of `specs` in one statement. Per spec: (its run, True), or, for a unique
    spec whose key a concurrent dispatch took after we looked, (the run holding it, False)."""
    shared = {"created_at": now, "batch_id": batch.pk if batch else None}
    rows = [_run_row(spec, now=now) for spec in specs]
    if not any(spec.unique_key for spec in specs):
        return [(run, True) for run in runs_insert(rows, shared=shared)]
    try:
        with transaction.atomic():
            return [(run, True) for run in runs_insert(rows, shared=shared)]
    except IntegrityError:
        pass
    # Rare: a key was taken between our look and our INSERT. Plain runs go in one INSERT
    # again, unique ones one at a time, each getting its holder back as a single dispatch does.
    plain = iter(runs_insert([r for r in rows if r["unique_key"] is None], shared=shared))
    result = []
    for spec in specs:
        if spec.unique_key is None:
            result.append((next(plain), True))
            continue
        run = _run_build(spec, now=now, batch=batch)
        holder = _run_insert_unique(run)
        result.append((holder, False) if holder is not None else (run, True))
    return result


def _run_row(spec: DispatchSpec, *, now: dt.datetime) -> dict:
    """The per-run columns of `spec`'s run (`bulk_insert.RUN_VARYING`)."""
    return {
        "job_name": spec.job,
        "queue": spec.queue,
        "priority": spec.priority,
        "payload": spec.payload,
        "tries": spec.tries,
        "timeout": spec.timeout,
        "backoff": list(spec.backoff),
        "retry_until": now + dt.timedelta(seconds=spec.retry_for) if spec.retry_for else None,
        "unique_key": spec.unique_key,
        "unique_active": spec.unique_key is not None,
        "unique_until": now + dt.timedelta(seconds=spec.unique_for) if spec.unique_for else None,
        "unique_until_processing": spec.unique_until_processing,
        "available_at": now + dt.timedelta(seconds=spec.delay) if spec.delay else now,
        "retry_of_id": spec.retry_of,
    }


def _after_commit_announce(runs: list[JobRun]) -> None:
    # Only listeners hear of it after commit (nothing in the ledger depends on it); robust: a
    # failing receiver is logged and neither fails the caller nor stops other callbacks.
    if not runs or not job_dispatched.has_listeners(JobRun):
        return

    def announce() -> None:
        for run in runs:
            job_dispatched.send(sender=JobRun, run=run)

    transaction.on_commit(announce, robust=True)
