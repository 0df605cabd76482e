"""The console's pages: the live queue page and monitored tags."""

import datetime as dt

import pytest
from django.utils import timezone

from aktina.core import roles
from aktina.jobs.console.models import MonitoredTag
from aktina.jobs.console.tags import TagRefused, monitored_tags_overview, tag_monitor
from aktina.jobs.models import JobProcess, JobRun
from tests.analytics.helpers import job_run
from tests.factories import OrderFactory
from tests.jobs.sample_jobs import TaggedJob
from tests.security.conftest import ROLES, people  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db
Status = JobRun.Status
# queue_health(): queue stats, two series, job stats, incidents, pauses (as before) + the
# process table and the runs its clusters hold (clusters panel) + due runs of unserved queues.
LIVE_STATEMENTS = 21


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


# --- clusters panel and unserved queues (issue 18; the runtime's process table) ----------------
def _cluster(name="c1", queues=("default",), pid=101, boot="b1"):
    from aktina.jobs.processes import process_register

    return process_register(kind="cluster", cluster=name, queues=list(queues), boot=boot, pid=pid)


def test_the_clusters_panel_shows_clusters_workers_and_the_runs_in_their_hands(ops):
    from aktina.jobs.lifecycle import runs_claim
    from aktina.jobs.processes import process_register, processes_heartbeat
    from tests.jobs.sample_jobs import NoopJob

    cluster = _cluster(queues=("default", "analytics"))
    process_register(kind="worker", cluster="c1", queues=["default"], boot="b1", pid=202)
    run = NoopJob.dispatch(1)
    runs_claim(queues=["default"], limit=1, holder_id=cluster.pk, worker="w")
    processes_heartbeat(cluster_id=cluster.pk, boot="b1", running=[run.pk])
    lost = _cluster(name="gone", pid=303, boot="b2")
    JobProcess.objects.filter(pk=lost.pk).update(last_seen=timezone.now() - dt.timedelta(minutes=5))

    live = ops.get("/dashboard/queues/", headers={"HX-Request": "true"}).content.decode()

    assert 'id="clusters"' in live
    assert 'id="cluster-c1-101"' in live
    assert "default, analytics" in live
    assert 'id="worker-202"' in live
    assert f'id="held-{run.pk}"' in live
    assert "NoopJob" in live
    assert 'id="lost-gone-303"' in live  # stale heartbeat, not yet rescued


def test_the_live_part_reads_a_fixed_number_of_statements(django_assert_num_queries, settings):
    from aktina.jobs.console.health import queue_health

    settings.JOBS_DEDICATED_QUEUES = ["urgent"]
    for size in (1, 5):
        for i in range(size):
            _cluster(name=f"c{size}-{i}", pid=1000 * size + i, boot=f"b{size}-{i}")
            job_run(queue="urgent", status=Status.QUEUED, ago=10)
            job_run(queue="default", status=Status.FAILED, ago=100)
        with django_assert_num_queries(LIVE_STATEMENTS):
            health = queue_health()
        assert len(health["clusters"]["live"]) == JobProcess.objects.count()
        assert [u["queue"] for u in health["unserved"]] == ["urgent"]


def test_an_unserved_queue_with_due_runs_is_named_with_its_runs(ops, settings):
    settings.JOBS_DEDICATED_QUEUES = ["urgent"]
    _cluster(queues=[q for q in settings.JOBS_QUEUES if q != "urgent"])
    job_run(queue="urgent", status=Status.QUEUED, ago=30)
    job_run(queue="urgent", status=Status.QUEUED, ago=20)

    live = ops.get("/dashboard/queues/", headers={"HX-Request": "true"}).content.decode()

    assert 'id="unserved-urgent"' in live
    assert "2 due run(s)" in live
    assert 'id="unserved-default"' not in live
    _cluster(name="urgent", queues=["urgent"], pid=999, boot="bu")
    live = ops.get("/dashboard/queues/", headers={"HX-Request": "true"}).content.decode()
    assert 'id="unserved-urgent"' not in live


def test_jobs_stats_flags_an_unserved_queue(settings):
    from io import StringIO

    from django.core.management import call_command

    _cluster(queues=[q for q in settings.JOBS_QUEUES if q != "urgent"])
    job_run(queue="urgent", status=Status.QUEUED, ago=30)
    out = StringIO()
    call_command("jobs", "stats", stdout=out)
    text = out.getvalue()
    assert "UNSERVED" in text
    assert "urgent" in text
    assert text.count("UNSERVED") == 1
