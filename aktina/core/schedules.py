"""The hourly purge of expired Idempotency-Keys: a django-q2 schedule kept after every migrate.

Like the ML nightly refresh, the schedule only dispatches the job, so the purge runs through
the ledger (timeout, retries, uniqueness, failure alerts).
"""

from __future__ import annotations

PURGE_SCHEDULE = "idempotency-keys-purge"


def idempotency_purge_dispatch() -> int:
    from aktina.core.jobs import PurgeExpiredIdempotencyKeys

    return PurgeExpiredIdempotencyKeys.dispatch().pk


def schedules_ensure() -> None:
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name=PURGE_SCHEDULE,
        defaults={
            "func": "aktina.core.schedules.idempotency_purge_dispatch",
            "schedule_type": Schedule.HOURLY,
            "repeats": -1,
        },
    )


def schedules_ensure_after_migrate(sender, using="default", **kwargs) -> None:
    from django.db import connections

    if "django_q_schedule" in connections[using].introspection.table_names():
        schedules_ensure()
