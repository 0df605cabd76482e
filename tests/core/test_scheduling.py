"""Every app keeps its django-q2 schedule through one helper, after every migrate."""

import datetime as dt

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_q.models import Schedule

from aktina.core.scheduling import schedule_ensure

pytestmark = pytest.mark.django_db

SCHEDULES = {
    "idempotency-keys-purge": ("aktina.core.schedules.idempotency_purge_dispatch", Schedule.HOURLY),
    "jobs-queue-wait-alerts": (
        "aktina.jobs.console.alerts.queue_wait_alerts_run",
        Schedule.MINUTES,
    ),
    "ml-refresh-nightly": ("ml.schedules.refresh_nightly", Schedule.DAILY),
}


def test_a_migrate_keeps_each_apps_schedule_once():
    Schedule.objects.all().delete()
    call_command("migrate", verbosity=0)
    call_command("migrate", verbosity=0)
    rows = {s.name: (s.func, s.schedule_type, s.repeats) for s in Schedule.objects.all()}
    assert rows == {name: (*spec, -1) for name, spec in SCHEDULES.items()}


def test_the_first_run_is_set_on_creation_only():
    first = timezone.now() + dt.timedelta(hours=5)
    schedule_ensure(name="t", func="math.floor", every="DAILY", first_run=first)
    assert Schedule.objects.get(name="t").next_run == first
    planned = first + dt.timedelta(days=1)  # django-q2 moved it after a run
    Schedule.objects.filter(name="t").update(next_run=planned)
    schedule_ensure(name="t", func="math.ceil", every="DAILY", first_run=first)
    schedule = Schedule.objects.get(name="t")
    assert (schedule.func, schedule.next_run) == ("math.ceil", planned)
