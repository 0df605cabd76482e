"""The hourly purge of expired Idempotency-Keys: a django-q2 schedule kept after every migrate.

Like the ML nightly refresh, the schedule only dispatches the job, so the purge runs through
the ledger (timeout, retries, uniqueness, failure alerts).
"""

from __future__ import annotations

from aktina.core.scheduling import ensure_after_migrate, schedule_ensure

PURGE_SCHEDULE = "idempotency-keys-purge"


def idempotency_purge_dispatch() -> int:
    from aktina.core.jobs import PurgeExpiredIdempotencyKeys

    return PurgeExpiredIdempotencyKeys.dispatch().pk


def schedules_ensure() -> None:
    schedule_ensure(
        name=PURGE_SCHEDULE,
        func="aktina.core.schedules.idempotency_purge_dispatch",
        every="HOURLY",
    )


schedules_ensure_after_migrate = ensure_after_migrate(schedules_ensure)
