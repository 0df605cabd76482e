import datetime as dt

import pytest
from django.utils import timezone

from aktina.core import roles
from aktina.jobs.console.alerts import (
    QUEUE_ALERT_SCHEDULE,
    queue_wait_alerts_check,
    queue_wait_threshold,
    schedules_ensure,
)
from aktina.jobs.console.models import QueueWaitIncident
from aktina.jobs.models import JobRun
from aktina.notifications.models import Notification
from tests.analytics.helpers import job_run

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def served(settings):
    """A live cluster serving every queue but `urgent` (dedicated): waits alone decide, except
    in the unserved-queue tests."""
    from aktina.jobs.processes import process_register

    settings.JOBS_DEDICATED_QUEUES = ["urgent"]
    queues = [q for q in settings.JOBS_QUEUES if q != "urgent"]
    return process_register(kind="cluster", cluster="default", queues=queues, boot="b-served")


def test_wait_over_threshold_notifies_operations_once_per_incident(make_user, settings):
    settings.QUEUE_WAIT_ALERT_SECONDS = 300
    operator = make_user(roles.OPERATIONS)
    stuck = job_run(queue="analytics", status=JobRun.Status.QUEUED, ago=400)

    assert queue_wait_alerts_check()["opened"] == ["analytics"]
    assert queue_wait_alerts_check()["opened"] == []  # same incident: no second message
    assert Notification.objects.filter(recipient=operator, kind="queue_wait").count() == 1

    JobRun.objects.filter(pk=stuck.pk).update(status=JobRun.Status.SUCCEEDED)
    assert queue_wait_alerts_check()["closed"] == ["analytics"]
    assert QueueWaitIncident.objects.get().ended_at is not None

    job_run(queue="analytics", status=JobRun.Status.QUEUED, ago=900)
    assert queue_wait_alerts_check()["opened"] == ["analytics"]  # a new incident
    assert Notification.objects.filter(recipient=operator, kind="queue_wait").count() == 2


def test_short_waits_and_delayed_runs_do_not_alert(make_user, settings):
    settings.QUEUE_WAIT_ALERT_SECONDS = 300
    make_user(roles.OPERATIONS)
    job_run(queue="analytics", status=JobRun.Status.QUEUED, ago=100)
    delayed = job_run(queue="default", status=JobRun.Status.QUEUED, ago=0)
    JobRun.objects.filter(pk=delayed.pk).update(
        available_at=timezone.now() + dt.timedelta(hours=1),
        created_at=timezone.now() - dt.timedelta(hours=1),
    )
    assert queue_wait_alerts_check() == {"opened": [], "closed": []}
    assert not Notification.objects.exists()


def test_per_queue_threshold_overrides_the_default(settings):
    settings.QUEUE_WAIT_ALERT_SECONDS = 300
    settings.QUEUE_WAIT_ALERT_SECONDS_BY_QUEUE = {"urgent": 30}
    assert (queue_wait_threshold("urgent"), queue_wait_threshold("default")) == (30, 300)


def test_schedule_is_created_idempotently():
    from django_q.models import Schedule

    schedules_ensure()
    schedules_ensure()
    schedule = Schedule.objects.get(name=QUEUE_ALERT_SCHEDULE)
    assert schedule.func == "aktina.jobs.console.alerts.queue_wait_alerts_run"


def test_the_schedule_of_the_alerts_former_home_is_removed():
    from django_q.models import Schedule

    Schedule.objects.create(
        name="analytics-queue-wait-alerts",
        func="analytics.schedules.queue_wait_alerts_run",
        schedule_type=Schedule.MINUTES,
        minutes=1,
    )
    schedules_ensure()
    assert not Schedule.objects.filter(func__startswith="analytics.").exists()


def test_an_unserved_queue_with_due_runs_opens_an_incident_at_once(make_user, settings):
    from aktina.jobs.processes import process_register

    settings.QUEUE_WAIT_ALERT_SECONDS = 300
    operator = make_user(roles.OPERATIONS)
    job_run(queue="urgent", status=JobRun.Status.QUEUED, ago=5)  # a short wait, but nobody serves

    assert queue_wait_alerts_check()["opened"] == ["urgent"]
    incident = QueueWaitIncident.objects.get(ended_at__isnull=True)
    assert (incident.queue, incident.unserved) == ("urgent", True)
    [note] = Notification.objects.filter(recipient=operator, kind="queue_wait")
    assert "not served" in note.subject
    assert "qcluster --name urgent" in note.body
    assert queue_wait_alerts_check()["opened"] == []  # same incident

    process_register(kind="cluster", cluster="urgent", queues=["urgent"], boot="b-urgent")
    assert queue_wait_alerts_check()["closed"] == ["urgent"]
