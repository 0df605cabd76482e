"""The periodic queue-wait check, a django-q2 schedule kept in place after every migrate."""

from __future__ import annotations

from aktina.core.scheduling import ensure_after_migrate, schedule_ensure

QUEUE_ALERT_SCHEDULE = "analytics-queue-wait-alerts"


def queue_wait_alerts_run() -> dict:
    from analytics.services import queue_wait_alerts_check

    return queue_wait_alerts_check()


def schedules_ensure() -> None:
    schedule_ensure(
        name=QUEUE_ALERT_SCHEDULE,
        func="analytics.schedules.queue_wait_alerts_run",
        every="MINUTES",
        minutes=1,
    )


schedules_ensure_after_migrate = ensure_after_migrate(schedules_ensure)
