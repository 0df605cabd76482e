"""The console's pages: the live queue page and monitored tags."""

import datetime as dt

import pytest
from django.utils import timezone

from aktina.core import roles
from aktina.jobs.console.models import MonitoredTag
from aktina.jobs.console.tags import TagRefused, monitored_tags_overview, tag_monitor
from aktina.jobs.models import JobRun
from tests.analytics.helpers import job_run
from tests.factories import OrderFactory
from tests.jobs.sample_jobs import TaggedJob
from tests.security.conftest import ROLES, people  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db
Status = JobRun.Status


@pytest.fixture
def ops(client, make_user):
    client.force_login(make_user(roles.OPERATIONS))
    return client


def test_the_page_polls_itself_and_an_htmx_request_gets_only_the_live_part(ops):
    page = ops.get("/dashboard/queues/").content.decode()
    assert 'hx-get="/dashboard/queues/"' in page
    assert 'hx-trigger="every 5s"' in page
    assert "/static/django_htmx/htmx" in page  # served from the package, never a CDN
    assert "<html" in page
    live = ops.get("/dashboard/queues/", headers={"HX-Request": "true"}).content.decode()
    assert live.lstrip().startswith("{#") is False
    assert "<html" not in live
    assert 'id="live"' in live


def test_throughput_and_failures_per_minute_over_the_last_hour(ops):
    for ago in (30, 90, 90):  # seconds: one run this minute, two a minute or so before
        job_run(queue="default", ago=ago)
    job_run(queue="default", status=Status.FAILED, ago=200)
    job_run(queue="default", ago=2 * 3600)  # outside the hour
    from aktina.jobs.console.health import queue_health

    health = queue_health()
    assert len(health["minutes"]) == 60
    assert health["last_hour"] == {"succeeded": 3, "failed": 1}
    assert sum(ok for _, ok, _ in health["minutes"]) == 3
    page = ops.get("/dashboard/queues/", headers={"HX-Request": "true"}).content.decode()
    assert 'id="chart-queue-minutes"' in page
    assert 'id="last-hour-succeeded">3<' in page


def test_the_minute_series_reads_a_fixed_number_of_statements(django_assert_num_queries):
    from aktina.jobs.selectors import queue_minute_series

    with django_assert_num_queries(1):
        queue_minute_series()
    for ago in range(0, 3600, 7):
        job_run(queue="default", ago=ago)
    with django_assert_num_queries(1):
        rows = queue_minute_series()
    assert sum(r["succeeded"] for r in rows) > 400


def test_operators_pin_tags_and_see_recent_and_failed_runs(ops):
    order = OrderFactory()
    ok = TaggedJob.dispatch("a", order=order)
    bad = TaggedJob.dispatch("b", order=order)
    JobRun.objects.filter(pk=bad.pk).update(status=Status.FAILED, last_error="Boom: no label")
    response = ops.post("/dashboard/tags/add/", {"tag": f"order:{order.pk}"}, follow=True)
    assert MonitoredTag.objects.filter(tag=f"order:{order.pk}").exists()
    page = response.content.decode()
    assert f"/admin/jobs/jobrun/{ok.pk}/change/" in page
    assert "Boom: no label" in page
    [item] = monitored_tags_overview()
    assert [r.pk for r in item["failed"]] == [bad.pk]
    assert [r.pk for r in item["recent"]] == [bad.pk, ok.pk]
    ops.post("/dashboard/tags/remove/", {"tag": f"order:{order.pk}"})
    assert not MonitoredTag.objects.exists()


def test_pinning_needs_the_operate_permission_and_a_tag_shape(client, make_user):
    client.force_login(make_user(roles.MANAGER))
    assert (
        client.get("/dashboard/tags/").status_code == 403
    )  # the console is operations' (jobs.view_jobrun)
    assert client.post("/dashboard/tags/add/", {"tag": "order:1"}).status_code == 403
    assert not MonitoredTag.objects.exists()
    MonitoredTag.objects.create(tag="order:1", added_at=timezone.now())
    assert client.post("/dashboard/tags/remove/", {"tag": "order:1"}).status_code == 403
    assert MonitoredTag.objects.filter(tag="order:1").exists()
    with pytest.raises(TagRefused):
        tag_monitor(tag="not a tag")
    assert tag_monitor(tag="order:1").tag == "order:1"  # pinning twice keeps one row
    assert MonitoredTag.objects.count() == 1


def test_the_tag_admin_lets_operations_pin_and_others_only_look(client, make_user):
    manager = make_user(roles.MANAGER)
    client.force_login(manager)
    assert client.get("/admin/console/monitoredtag/").status_code == 200
    assert client.post("/admin/console/monitoredtag/add/", {"tag": "order:9"}).status_code == 403
    client.force_login(make_user(roles.OPERATIONS))
    client.post("/admin/console/monitoredtag/add/", {"tag": "order:9"})
    assert MonitoredTag.objects.get().tag == "order:9"


def test_the_overview_reads_two_ranges_per_tag(django_assert_num_queries):
    for n in range(3):
        MonitoredTag.objects.create(tag=f"order:{n}", added_at=timezone.now())
    with django_assert_num_queries(1 + 2 * 3):
        monitored_tags_overview()


def test_delayed_runs_do_not_count_as_finished(ops):
    job_run(queue="default", status=Status.QUEUED, ago=-60)
    from aktina.jobs.console.health import queue_health

    assert queue_health(now=timezone.now() + dt.timedelta(seconds=1))["last_hour"]["succeeded"] == 0
