"""Queue-wait alerts: an incident (and one notification to operations) per queue whose oldest
due run has waited longer than its threshold, closed once the wait is back under it. Checked
every minute by a django-q2 schedule kept in place after every migrate."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from aktina.core.scheduling import ensure_after_migrate, schedule_ensure
from aktina.jobs.console.models import QueueWaitIncident
from aktina.jobs.selectors import queue_stats

QUEUE_ALERT_SCHEDULE = "jobs-queue-wait-alerts"
# The schedule's name while the alerts lived in analytics: removed so that it stops calling a
# function that is gone.
FORMER_SCHEDULES = ("analytics-queue-wait-alerts",)


def queue_wait_threshold(queue: str) -> int:
    overrides = getattr(settings, "QUEUE_WAIT_ALERT_SECONDS_BY_QUEUE", {}) or {}
    return int(overrides.get(queue, settings.QUEUE_WAIT_ALERT_SECONDS))


def queue_wait_alerts_check(*, now: dt.datetime | None = None) -> dict[str, list[str]]:
    """Open an incident (and notify operations once) for each queue whose oldest waiting run
    has waited longer than its threshold, or that has due runs and no live cluster serving it
    (at once: nothing will ever run them); close the incident once the wait is back under the
    threshold and the queue is served again.
    """
    from aktina.core.roles import OPERATIONS
    from aktina.jobs.processes import queues_served_alive
    from aktina.jobs.queues import cluster_for
    from aktina.notifications.services import notification_send_to_role

    now = now or timezone.now()
    opened, closed = [], []
    open_incidents = {i.queue: i for i in QueueWaitIncident.objects.filter(ended_at__isnull=True)}
    served = queues_served_alive()
    for stats in queue_stats(now=now):
        queue = stats["queue"]
        oldest = stats["oldest_waiting_at"]
        wait = max(0.0, (now - oldest).total_seconds()) if oldest else 0.0
        threshold = queue_wait_threshold(queue)
        incident = open_incidents.get(queue)
        unserved = bool(stats["pending"]) and not served.get(queue)
        if wait >= threshold or unserved:
            if incident is not None:
                if wait > incident.peak_wait_seconds:
                    QueueWaitIncident.objects.filter(pk=incident.pk).update(peak_wait_seconds=wait)
                continue
            try:
                with transaction.atomic():
                    incident = QueueWaitIncident.objects.create(
                        queue=queue, threshold_seconds=threshold, started_at=now,
                        peak_wait_seconds=wait, unserved=unserved,
                    )  # fmt: skip
                    if unserved:
                        subject = f"Queue {queue!r} is not served: {stats['pending']} due run(s)"
                        body = (
                            f"Queue {queue!r} has {stats['pending']} due run(s) (the oldest "
                            f"waiting {wait:.0f} s) and no live cluster serves it. Start one: "
                            f"manage.py qcluster --name {cluster_for(queue)}. "
                            "See /dashboard/queues/."
                        )
                    else:
                        subject = f"Queue {queue!r}: jobs waiting {wait / 60:.1f} min"
                        body = (
                            f"The oldest waiting run of queue {queue!r} has waited {wait:.0f} s "
                            f"(threshold {threshold} s, {stats['pending']} pending). "
                            "See /dashboard/queues/."
                        )
                    notification_send_to_role(
                        role=OPERATIONS,
                        kind="queue_wait",
                        subject=subject,
                        body=body,
                        dedupe_key=f"queue-wait:{queue}:{incident.pk}",
                    )
            except IntegrityError:
                continue  # another checker opened it first
            opened.append(queue)
        elif incident is not None:
            QueueWaitIncident.objects.filter(pk=incident.pk, ended_at__isnull=True).update(
                ended_at=now
            )
            closed.append(queue)
    return {"opened": opened, "closed": closed}


def queue_wait_alerts_run() -> dict:
    """The schedule's function (a dotted path stored in django-q2's Schedule row)."""
    return queue_wait_alerts_check()


def schedules_ensure() -> None:
    from django_q.models import Schedule

    Schedule.objects.filter(name__in=FORMER_SCHEDULES).delete()
    schedule_ensure(
        name=QUEUE_ALERT_SCHEDULE,
        func="aktina.jobs.console.alerts.queue_wait_alerts_run",
        every="MINUTES",
        minutes=1,
    )


schedules_ensure_after_migrate = ensure_after_migrate(schedules_ensure)
