"""The nightly ML refresh: a django-q2 schedule kept in place after every migrate.

The schedule only dispatches the job, so the refresh runs on the `ml-processing` queue with
the ledger's timeout, retries, uniqueness and failure alerts, like any other dispatch.
"""

from __future__ import annotations

import datetime as dt

from aktina.core.scheduling import ensure_after_migrate, schedule_ensure

NIGHTLY_SCHEDULE = "ml-refresh-nightly"
# Local time of day; quiet hours, after the day's orders are in.
NIGHTLY_AT = dt.time(2, 30)


def refresh_nightly() -> int:
    """Dispatch the refresh with the configured frequency and horizon; returns the run id."""
    from django.conf import settings

    from ml.jobs import RefreshMLPredictions

    run = RefreshMLPredictions.dispatch(
        freq=settings.ML_FORECAST_FREQ,
        horizon=settings.ML_FORECAST_HORIZON,
    )
    return run.pk


def schedules_ensure() -> None:
    from django.utils import timezone

    now = timezone.localtime()
    first = now.replace(hour=NIGHTLY_AT.hour, minute=NIGHTLY_AT.minute, second=0, microsecond=0)
    if first <= now:
        first += dt.timedelta(days=1)
    schedule_ensure(
        name=NIGHTLY_SCHEDULE,
        func="ml.schedules.refresh_nightly",
        every="DAILY",
        first_run=first,
    )


schedules_ensure_after_migrate = ensure_after_migrate(schedules_ensure)
