"""The periodic queue-wait check, a django-q2 schedule kept in place after every migrate."""

from __future__ import annotations

QUEUE_ALERT_SCHEDULE = "analytics-queue-wait-alerts"


def queue_wait_alerts_run() -> dict:
    from analytics.services import queue_wait_alerts_check

    return queue_wait_alerts_check()


def schedules_ensure() -> None:
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name=QUEUE_ALERT_SCHEDULE,
        defaults={
            "func": "analytics.schedules.queue_wait_alerts_run",
            "schedule_type": Schedule.MINUTES,
            "minutes": 1,
            "repeats": -1,
        },
    )


def schedules_ensure_after_migrate(sender, using="default", **kwargs) -> None:
    from django.db import connections

    if "django_q_schedule" in connections[using].introspection.table_names():
        schedules_ensure()
