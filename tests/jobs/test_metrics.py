"""GET /metrics: who may scrape it, and what a Prometheus parser reads from it."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.authtoken.models import Token

from aktina.core import roles
from aktina.jobs.counters import counters_add
from aktina.jobs.models import JobRun
from aktina.jobs.sweeper import sweep
from aktina.jobs.testing import work_off
from tests.factories import UserFactory
from tests.jobs.sample_jobs import BrokenJob, NoopJob

pytestmark = pytest.mark.django_db
SECRET = "scrape-secret-0123456789"


@pytest.fixture(autouse=True)
def _metrics_token(settings):
    settings.METRICS_TOKEN = SECRET


def scrape(client, **headers) -> dict:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def test_anonymous_and_wrong_secrets_get_401_and_non_staff_403(client):
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics").headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Token nope").status_code == 401
    customer = UserFactory(is_staff=False)
    token = Token.objects.create(user=customer)
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Token {token.key}").status_code == 403


def test_an_empty_metrics_token_lets_no_bearer_in(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer x").status_code == 401


def test_a_token_and_a_session_with_jobs_view_jobrun_may_scrape(client, make_user):
    operator = make_user(roles.OPERATIONS)
    token = Token.objects.create(user=operator)
    assert scrape(client, HTTP_AUTHORIZATION=f"Token {token.key}")
    client.force_login(operator)
    assert scrape(client)


def test_is_staff_alone_may_not_scrape(client):
    staff = UserFactory(is_staff=True)
    token = Token.objects.create(user=staff)
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Token {token.key}").status_code == 403
    client.force_login(staff)
    assert client.get("/metrics").status_code == 403


def test_scrape_reports_the_ledger_by_queue_and_job(client):
    now = timezone.now()
    for _ in range(3):
        NoopJob.dispatch()
    NoopJob().on_queue("urgent").delay(dt.timedelta(hours=1)).dispatch()
    BrokenJob.dispatch("unused")  # a permanent error: fails on its first try
    work_off()
    waiting = [NoopJob.dispatch() for _ in range(2)]
    JobRun.objects.filter(pk=waiting[0].pk).update(available_at=now - dt.timedelta(seconds=90))
    counters_add(group="sentinel", counts={"pool_resets": 2}, label="aktina")
    counters_add(group="sweeper", counts={"expired": 1, "resent": 0})

    samples = scrape(client, HTTP_AUTHORIZATION=f"Bearer {SECRET}")

    assert value(samples, "aktina_job_runs", queue="default", status="queued") == 2
    assert value(samples, "aktina_job_runs", queue="urgent", status="delayed") == 1
    assert value(samples, "aktina_job_runs", queue="default", status="failed") == 1
    assert value(samples, "aktina_job_queue_depth", queue="default") == 2
    assert value(samples, "aktina_job_queue_depth", queue="notifications") == 0
    assert value(samples, "aktina_job_oldest_wait_seconds", queue="default") >= 90
    assert value(samples, "aktina_job_oldest_wait_seconds", queue="urgent") == 0
    finished = "aktina_job_runs_finished_last_hour"
    assert value(samples, finished, queue="default", status="succeeded") == 3
    assert value(samples, finished, queue="default", status="failed") == 1
    assert value(samples, finished, queue="urgent", status="succeeded") == 0

    noop, broken = NoopJob.job_name, BrokenJob.job_name
    assert value(samples, "aktina_job_wait_seconds_gcount", queue="default", job=noop) == 3
    assert (
        value(samples, "aktina_job_run_seconds_bucket", queue="default", job=noop, le="+Inf") == 3
    )
    assert value(samples, "aktina_job_run_seconds_gcount", queue="default", job=broken) == 1
    assert value(samples, "aktina_job_attempts_last_hour", queue="default", job=noop) == 3
    assert value(samples, "aktina_job_failures_last_hour", queue="default", job=broken) == 1
    assert value(samples, "aktina_job_failures_last_hour", queue="default", job=noop) == 0

    sentinel = "aktina_job_sentinel_actions_total"
    assert value(samples, sentinel, action="pool_resets", cluster="aktina") == 2
    assert value(samples, "aktina_job_sweeper_actions_total", action="expired") == 1
    assert ("aktina_job_sweeper_actions_total", (("action", "resent"),)) not in samples


def test_sweeper_passes_add_to_the_shared_counters(client):
    run = NoopJob.dispatch()
    JobRun.objects.filter(pk=run.pk).update(
        status=JobRun.Status.RUNNING, attempts=1, lease_expires_at=timezone.now()
    )
    sweep()
    sweep()  # nothing left to expire: the count stays
    samples = scrape(client, HTTP_AUTHORIZATION=f"Bearer {SECRET}")
    assert value(samples, "aktina_job_sweeper_actions_total", action="expired") == 1


def test_scrape_costs_the_same_queries_whatever_the_ledger_holds(client, settings):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            scrape(client, HTTP_AUTHORIZATION=f"Bearer {SECRET}")
        return len(captured)

    NoopJob.dispatch()
    work_off()
    few = queries()
    for n in range(40):
        NoopJob().on_queue(list(settings.JOBS_QUEUES)[n % 3]).dispatch()
        BrokenJob.dispatch("unused")
    work_off()
    counters_add(group="sentinel", counts={"pool_resets": 1}, label="urgent")
    # Two counts, two bounded samples per queue, the counters table, and (issue 17) the live
    # clusters per queue: the database's clock, the process table, the due runs of unserved
    # queues. None per run or job.
    assert queries() == few == 3 + 2 * len(settings.JOBS_QUEUES) + 3
