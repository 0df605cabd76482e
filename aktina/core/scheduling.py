"""The one way an app keeps a django-q2 schedule in place: `schedule_ensure`, called after every
migrate through `ensure_after_migrate`. Every schedule only dispatches a job (or runs a short
check), so the work itself goes through the ledger."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable


def schedule_ensure(
    *, name: str, func: str, every: str, first_run: dt.datetime | None = None, **fields
) -> None:
    """Create or update the repeating schedule `name`, which calls `func` (a dotted path) every
    `every` (a django-q2 schedule type by name: "MINUTES", "HOURLY", "DAILY"...); idempotent.
    `fields` are further Schedule fields (`minutes=5`). `first_run` applies only when the
    schedule is created: a later migrate must not move the next run django-q2 planned."""
    from django_q.models import Schedule

    schedule_type = getattr(Schedule, every)
    defaults = {"func": func, "schedule_type": schedule_type, "repeats": -1, **fields}
    create_defaults = {**defaults, "next_run": first_run} if first_run else defaults
    Schedule.objects.update_or_create(name=name, defaults=defaults, create_defaults=create_defaults)


def ensure_after_migrate(ensure: Callable[[], None]) -> Callable[..., None]:
    """A `post_migrate` receiver that calls `ensure()` once django-q2's table exists."""

    def receiver(sender, using="default", **kwargs) -> None:
        from django.db import connections

        if "django_q_schedule" in connections[using].introspection.table_names():
            ensure()

    return receiver
