import pytest
from django_q.models import Schedule

from aktina.core import roles
from aktina.jobs.models import JobRun
from aktina.jobs.testing import work_off
from aktina.notifications.models import Notification
from ml import services
from ml.jobs import RefreshMLPredictions
from ml.models import PredictionRun
from ml.schedules import NIGHTLY_SCHEDULE, refresh_nightly, schedules_ensure
from tests.ml.helpers import seed_history

pytestmark = pytest.mark.django_db


@pytest.fixture
def seeded(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    seed_history()


def test_the_job_runs_the_refresh_on_the_ml_queue(seeded, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        job_run = RefreshMLPredictions.dispatch(only="segments", freq="M", horizon=3)
    assert (job_run.queue, job_run.timeout, job_run.tries) == ("ml-processing", 600, 2)

    with django_capture_on_commit_callbacks(execute=True):
        assert work_off(queue="ml-processing") == 1

    job_run.refresh_from_db()
    assert job_run.status == JobRun.Status.SUCCEEDED
    run = PredictionRun.objects.get()
    assert (run.status, run.only, run.freq, run.horizon) == ("succeeded", "segments", "M", 3)
    assert run.current_segments


def test_a_second_dispatch_while_one_waits_is_the_same_run(db):
    first = RefreshMLPredictions.dispatch()
    second = RefreshMLPredictions.dispatch(only="forecasts")
    assert first.pk == second.pk
    assert JobRun.objects.count() == 1


def test_a_failing_refresh_is_retried_then_operations_are_told(
    seeded, monkeypatch, make_user, django_capture_on_commit_callbacks
):
    operator = make_user(roles.OPERATIONS)

    def explode(*args, **kwargs):
        raise RuntimeError("no memory left")

    monkeypatch.setattr(services, "segment_customers", explode)
    with django_capture_on_commit_callbacks(execute=True):
        job_run = RefreshMLPredictions.dispatch(only="segments")
        work_off(queue="ml-processing", include_delayed=True)

    job_run.refresh_from_db()
    assert (job_run.status, job_run.attempts) == (JobRun.Status.FAILED, 2)
    assert list(PredictionRun.objects.values_list("status", flat=True)) == ["failed", "failed"]
    # One notification, from failed(), in words; the generic job alert is switched off.
    note = Notification.objects.get(recipient=operator)
    assert note.kind == "ml_refresh_failed"
    assert "no memory left" in note.body


def test_the_nightly_schedule_exists_once_and_dispatches_the_job(db):
    schedules_ensure()
    schedules_ensure()

    schedule = Schedule.objects.get(name=NIGHTLY_SCHEDULE)
    assert (schedule.func, schedule.schedule_type) == ("ml.schedules.refresh_nightly", "D")
    assert schedule.next_run is not None
    run_id = refresh_nightly()
    assert JobRun.objects.get(pk=run_id).job_name == RefreshMLPredictions.job_name
