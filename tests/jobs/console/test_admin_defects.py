"""The admin as operators use it: defects 1, 2, 3 and 6 of issue 18."""

import datetime as dt

import pytest
from django.contrib import admin
from django.utils import timezone

from aktina.core import roles
from aktina.jobs.models import JobRun
from orders.jobs import GenerateShippingLabelJob
from orders.models import Order
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/jobs/jobrun/"


@pytest.fixture
def operator(client, make_user):
    client.force_login(make_user(roles.OPERATIONS))
    return client


def _stranded_order():
    """An order in fulfilment whose label job waits 5 minutes: nothing else will ship it."""
    order = OrderFactory(status=Order.Status.FULFILLING)
    run = GenerateShippingLabelJob(order).delay(dt.timedelta(minutes=5)).dispatch()
    return order, run


# --- defect 1: a queued or running run cannot be deleted; cancel is offered instead ----------
def test_bulk_delete_of_a_queued_label_run_is_refused_and_the_order_keeps_its_job(operator):
    order, run = _stranded_order()
    response = operator.post(
        CHANGELIST,
        {"action": "delete_selected", "_selected_action": [run.pk], "post": "yes"},
        follow=True,
    )
    assert JobRun.objects.filter(pk=run.pk, status=JobRun.Status.QUEUED).exists()
    page = response.content.decode()
    assert "Successfully deleted" not in page
    order.refresh_from_db()
    assert order.status == Order.Status.FULFILLING


@pytest.mark.parametrize("status", [JobRun.Status.QUEUED, JobRun.Status.RUNNING])
def test_the_delete_page_of_an_active_run_is_refused(operator, status):
    _, run = _stranded_order()
    JobRun.objects.filter(pk=run.pk).update(status=status)
    assert operator.post(f"{CHANGELIST}{run.pk}/delete/", {"post": "yes"}).status_code == 403
    assert JobRun.objects.filter(pk=run.pk).exists()
    page = operator.get(f"{CHANGELIST}{run.pk}/change/").content.decode()
    assert f"{CHANGELIST}{run.pk}/delete/" not in page


def test_a_finished_run_can_still_be_deleted(operator):
    _, run = _stranded_order()
    JobRun.objects.filter(pk=run.pk).update(status=JobRun.Status.SUCCEEDED)
    operator.post(f"{CHANGELIST}{run.pk}/delete/", {"post": "yes"})
    assert not JobRun.objects.filter(pk=run.pk).exists()


def test_the_cancel_confirmation_says_the_order_and_its_state_stay_as_they_are(operator):
    order, run = _stranded_order()
    page = operator.get(f"{CHANGELIST}{run.pk}/cancel/").content.decode()
    assert JobRun.objects.get(pk=run.pk).status == JobRun.Status.QUEUED  # a GET changes nothing
    assert str(order) in page
    assert "Fulfilling" in page
    assert "stays" in page
    response = operator.post(f"{CHANGELIST}{run.pk}/cancel/", follow=True)
    assert response.status_code == 200
    assert JobRun.objects.get(pk=run.pk).status == JobRun.Status.CANCELLED


# --- defect 2: django-q2's own tasks show their function and arguments ----------------------
def _raw_task(func="math.sqrt", args=(-1,), kwargs=None):
    from django_q.tasks import async_task

    async_task(func, *args, **(kwargs or {}))
    return JobRun.objects.filter(job_name="aktina.jobs.rawtasks.DjangoQTask").latest("pk")


def test_a_raw_task_is_named_by_its_function_in_the_list_search_and_filter(operator):
    run = _raw_task()
    assert run.task_function == "math.sqrt"
    page = operator.get(CHANGELIST).content.decode()
    assert "math.sqrt" in page
    found = operator.get(CHANGELIST, {"q": "math.sqrt"}).content.decode()
    assert f"{CHANGELIST}{run.pk}/change/" in found
    filtered = operator.get(CHANGELIST, {"task_function": "math.sqrt"}).content.decode()
    assert f"{CHANGELIST}{run.pk}/change/" in filtered


def test_the_run_page_shows_decoded_redacted_arguments_never_the_pickle(operator, settings):
    secret = settings.SECRET_KEY
    run = _raw_task(func="math.pow", args=(2, 3), kwargs={"note": f"token {secret}"})
    page = operator.get(f"{CHANGELIST}{run.pk}/change/").content.decode()
    assert "math.pow" in page
    assert "(2, 3)" in page
    assert secret not in page
    assert "***" in page
    assert run.payload["args"][0] not in page  # the signed base64 pickle


def test_job_stats_count_raw_tasks_per_function(operator):
    from aktina.jobs.selectors import job_stats

    for func in ("math.sqrt", "math.sqrt", "math.floor"):
        run = _raw_task(func=func, args=(4,))
        JobRun.objects.filter(pk=run.pk).update(
            status=JobRun.Status.SUCCEEDED, started_at=timezone.now(), finished_at=timezone.now()
        )
    done = {s["job"]: s["throughput_1h"] for s in job_stats()}
    assert done["math.sqrt"] == 2
    assert done["math.floor"] == 1
    assert "DjangoQTask" not in done


def test_an_operator_retry_keeps_the_function():
    from aktina.jobs.retrying import run_retry

    run = _raw_task()
    JobRun.objects.filter(pk=run.pk).update(status=JobRun.Status.FAILED)
    assert run_retry(run=run).task_function == "math.sqrt"


# --- defect 3: django-q2's result stores are not in the admin; schedules are -----------------
def test_django_q_result_pages_are_gone_and_schedules_stay(operator):
    from django_q.models import Failure, OrmQ, Schedule, Success

    for model in (Failure, Success, OrmQ):
        assert not admin.site.is_registered(model)
    assert admin.site.is_registered(Schedule)


def test_metrics_count_raw_tasks_per_function(client, settings):
    from prometheus_client.parser import text_string_to_metric_families

    settings.METRICS_TOKEN = "scrape-secret-0123456789"
    for func in ("math.sqrt", "math.sqrt", "math.floor"):
        run = _raw_task(func=func, args=(4,))
        JobRun.objects.filter(pk=run.pk).update(
            status=JobRun.Status.SUCCEEDED, attempts=1, started_at=timezone.now(),
            finished_at=timezone.now(),
        )  # fmt: skip
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret-0123456789")
    attempts = {
        sample.labels["job"]: sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
        if sample.name == "aktina_job_attempts_last_hour"
    }
    assert attempts == {"math.sqrt": 2, "math.floor": 1}


# --- defect 5: a running run is terminated from its page, after a confirmation ----------------
def test_a_running_run_offers_terminate_with_a_confirmation(operator):
    from aktina.jobs.lifecycle import runs_claim
    from aktina.jobs.processes import process_register
    from tests.jobs.sample_jobs import NoopJob

    run = NoopJob.dispatch(1)
    cluster = process_register(kind="cluster", cluster="c1", queues=["default"], boot="b1")
    runs_claim(queues=["default"], limit=1, holder_id=cluster.pk, worker="w")
    queued = NoopJob.dispatch(2)
    assert JobRun.objects.get(pk=run.pk).status == JobRun.Status.RUNNING
    assert 'id="run-terminate"' in operator.get(f"{CHANGELIST}{run.pk}/change/").content.decode()
    assert (
        'id="run-terminate"'
        not in operator.get(f"{CHANGELIST}{queued.pk}/change/").content.decode()
    )

    page = operator.get(f"{CHANGELIST}{run.pk}/terminate/").content.decode()
    assert 'id="confirm-terminate"' in page
    assert not JobRun.objects.get(pk=run.pk).terminate_requested_by  # a GET changes nothing
    response = operator.post(f"{CHANGELIST}{run.pk}/terminate/", follow=True)

    assert response.status_code == 200
    assert JobRun.objects.get(pk=run.pk).terminate_requested_by
    refused = operator.post(f"{CHANGELIST}{queued.pk}/terminate/", follow=True)
    assert "only a run running in a cluster" in refused.content.decode()
