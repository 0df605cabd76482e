"""What Horizon users reach for: tags, per-job metrics, pause/resume, retry by filter, a
readable failed list (issue 14 §5). Inline workers; the live-cluster half is test_horizon_live."""

import datetime as dt
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from aktina.core import roles
from aktina.jobs.models import JobRun, JobRunTag, QueuePause
from aktina.jobs.pausing import queue_pause, queue_resume, queues_paused
from aktina.jobs.retrying import run_retry
from aktina.jobs.selectors import job_stats
from aktina.jobs.testing import work_off
from aktina.jobs.worker import perform
from orders.jobs import ProcessBulkOrdersJob
from tests.factories import OrderFactory, ProductFactory
from tests.jobs.sample_jobs import BrokenJob, FailWithJob, NoopJob, TaggedJob

pytestmark = pytest.mark.django_db
Status = JobRun.Status


def jobs(*args) -> str:
    out = StringIO()
    call_command("jobs", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


# --- tags ------------------------------------------------------------------------------------
def test_runs_are_tagged_from_model_arguments_and_the_tags_hook():
    order = OrderFactory()
    run = TaggedJob.dispatch("gift", customer=order.customer, order=order)
    assert set(run.tags.values_list("tag", flat=True)) == {
        f"order:{order.pk}",
        f"user:{order.customer.pk}",
        "label:gift",
    }
    product = ProductFactory(sku="SKU-0006")
    bulk = ProcessBulkOrdersJob.dispatch(product)
    assert set(bulk.tags.values_list("tag", flat=True)) == {
        f"product:{product.pk}",
        "product:SKU-0006",
    }


def test_a_retry_keeps_the_tags():
    order = OrderFactory()
    run = TaggedJob.dispatch("x", order=order)
    JobRun.objects.filter(pk=run.pk).update(status=Status.FAILED)
    again = run_retry(run=run)
    assert set(again.tags.values_list("tag", flat=True)) == {f"order:{order.pk}", "label:x"}


def test_jobs_list_by_tag():
    order, other = OrderFactory(), OrderFactory()
    mine = TaggedJob.dispatch("a", order=order)
    theirs = TaggedJob.dispatch("b", order=other)
    listing = jobs("list", "--tag", f"order:{order.pk}")
    ids = [line.split()[0] for line in listing.splitlines()[1:]]
    assert ids == [str(mine.pk)]
    assert str(theirs.pk) not in ids


def test_admin_search_by_tag_uses_the_tag_index_only(client, make_user):
    order = OrderFactory()
    mine = TaggedJob.dispatch("a", order=order)
    # Its payload mentions the same text, but only the tagged run matches a tag search.
    decoy = NoopJob.dispatch(n=order.pk)
    client.force_login(make_user(roles.OPERATIONS))
    with CaptureQueriesContext(connection) as queries:
        page = client.get("/admin/jobs/jobrun/", {"q": f"order:{order.pk}"}).content.decode()
    assert f"/admin/jobs/jobrun/{mine.pk}/change/" in page
    assert f"/admin/jobs/jobrun/{decoy.pk}/change/" not in page
    ledger_reads = [q["sql"] for q in queries if '"jobs_jobrun"' in q["sql"]]
    assert ledger_reads
    assert not any("payload" in sql and "LIKE" in sql for sql in ledger_reads)


def test_order_detail_lists_the_runs_tagged_with_the_order(as_user, customer):
    order = OrderFactory(customer=customer)
    # The order is not the first argument: the old JSON scan (args[0]) missed such runs.
    run = TaggedJob.dispatch("late", customer=customer, order=order)
    JobRunTag.objects.create(run=NoopJob.dispatch(), tag="order:0")  # someone else's run
    data = as_user(customer).get(f"/api/orders/{order.pk}/").json()
    assert [j["id"] for j in data["jobs"]] == [run.pk]


# --- per-job-class metrics -------------------------------------------------------------------
def _finished(job_name: str, *, status: str, ago_min: float, run_ms: float, error: str = ""):
    now = timezone.now()
    finished = now - dt.timedelta(minutes=ago_min)
    started = finished - dt.timedelta(milliseconds=run_ms)
    return JobRun(
        job_name=job_name,
        queue="default",
        status=status,
        created_at=started,
        available_at=started,
        started_at=started,
        finished_at=finished,
        last_error=error,
    )


def test_job_stats_per_class_throughput_run_time_failure_rate_and_last_failure():
    a, b = "tests.A", "tests.B"
    runs = [_finished(a, status=Status.SUCCEEDED, ago_min=5, run_ms=ms) for ms in (10, 20, 30, 40)]
    runs += [_finished(a, status=Status.SUCCEEDED, ago_min=120, run_ms=999)]  # 24 h, not 1 h
    runs += [_finished(a, status=Status.SUCCEEDED, ago_min=60 * 30, run_ms=5)]  # older than 24 h
    runs += [
        _finished(a, status=Status.FAILED, ago_min=50, run_ms=1, error="ValueError: old one"),
        _finished(a, status=Status.RETRIED, ago_min=3, run_ms=1, error="KeyError: 'sku'\nmore"),
        _finished(b, status=Status.FAILED, ago_min=60 * 30, run_ms=1, error="OSError: gone"),
    ]
    JobRun.objects.bulk_create(runs)
    stats = {s["job_name"]: s for s in job_stats()}
    sa, sb = stats[a], stats[b]
    assert (sa["throughput_1h"], sa["throughput_24h"], sa["failed_24h"]) == (4, 5, 2)
    assert sa["failure_rate"] == round(2 / 7, 4)
    assert (sa["run_p50_ms"], sa["run_p95_ms"]) == (20.0, 40.0)
    assert sa["last_failure"]["error"] == "KeyError: 'sku'"
    assert (sb["throughput_24h"], sb["failure_rate"], sb["run_p50_ms"]) == (0, None, None)
    assert sb["last_failure"]["error"] == "OSError: gone"  # the last failure, however old


def test_job_stats_queries_do_not_grow_with_the_ledger(django_assert_max_num_queries):
    names = [f"tests.J{i}" for i in range(3)]

    def fill(n):
        JobRun.objects.bulk_create(
            _finished(names[i % 3], status=Status.SUCCEEDED, ago_min=i % 50, run_ms=i)
            for i in range(n)
        )

    fill(30)
    with CaptureQueriesContext(connection) as small:
        job_stats()
    fill(3000)
    with django_assert_max_num_queries(len(small.captured_queries)):
        stats = job_stats()
    assert sum(s["throughput_1h"] for s in stats) == 3030
    # Two loose index scans (job classes, django-q2 task functions), counts, last failures,
    # then one run-time sample per job.
    assert len(small.captured_queries) == 4 + len(names)


def test_queue_page_shows_the_job_class_table(client, make_user, tmp_path):
    BrokenJob.dispatch(str(tmp_path))
    NoopJob.dispatch()
    work_off()
    client.force_login(make_user(roles.OPERATIONS))
    page = client.get("/dashboard/queues/").content.decode()
    assert 'id="job-NoopJob"' in page
    assert 'id="job-BrokenJob"' in page
    assert "PermanentError: the order is malformed" in page


# --- pause and resume ------------------------------------------------------------------------
def test_a_paused_queue_accepts_runs_but_starts_none_until_resumed():
    queue_pause(queue="default")
    run = NoopJob.dispatch()
    assert perform(run.pk, 60) == "skipped"  # a delivery during the pause claims nothing
    run.refresh_from_db()
    assert (run.status, run.attempts) == (Status.QUEUED, 0)
    assert work_off() == 0
    assert queue_resume(queue="default") is True
    assert work_off() == 1
    run.refresh_from_db()
    assert run.status == Status.SUCCEEDED


def test_the_paused_set_is_cached_for_at_most_one_sweep(settings, monkeypatch):
    import aktina.jobs.pausing as pausing

    settings.JOBS_SWEEP_SECONDS = 5
    clock = [1000.0]
    monkeypatch.setattr(pausing.time, "monotonic", lambda: clock[0])
    assert queues_paused() == set()
    # Another host pauses (a row, no call into this process).
    QueuePause.objects.create(queue="analytics", paused_at=timezone.now())
    clock[0] += 4.9
    assert queues_paused() == set()
    clock[0] += 0.2
    assert queues_paused() == {"analytics"}


def test_jobs_pause_and_resume_commands():
    out = jobs("pause", "notifications")
    assert "queue notifications paused since" in out
    assert "runs are still accepted" in out
    pause = QueuePause.objects.get(queue="notifications")
    assert pause.paused_by is None
    assert "@" in pause.paused_by_name
    assert "queue notifications resumed" in jobs("resume", "notifications")
    assert "was not paused" in jobs("resume", "notifications")
    with pytest.raises(CommandError, match="unknown queue 'nope'"):
        jobs("pause", "nope")


def test_queue_page_pauses_and_resumes_with_the_operations_permission(client, make_user):
    manager = make_user(roles.MANAGER)
    client.force_login(manager)
    assert client.post("/dashboard/queues/default/pause/").status_code == 403
    assert not QueuePause.objects.exists()
    ops = make_user(roles.OPERATIONS, username="olga")
    client.force_login(ops)
    assert client.get("/dashboard/queues/default/pause/").status_code == 405
    assert client.post("/dashboard/queues/nope/pause/").status_code == 404
    page = client.post("/dashboard/queues/default/pause/", follow=True).content.decode()
    assert QueuePause.objects.get(queue="default").paused_by == ops
    assert "paused by olga" in page
    assert 'id="resume-default"' in page
    assert 'id="pause-analytics"' in page
    page = client.post("/dashboard/queues/default/resume/", follow=True).content.decode()
    assert not QueuePause.objects.exists()
    assert "paused by" not in page


# --- bulk retry by filter, lineage -----------------------------------------------------------
def _failures():
    runs = {
        "value": [FailWithJob.dispatch("value", str(i)) for i in range(3)],
        "lookup": [FailWithJob.dispatch("lookup", str(i)) for i in range(2)],
        "broken": [BrokenJob.dispatch("/nonexistent")],
    }
    work_off()
    assert JobRun.objects.filter(status=Status.FAILED).count() == 6
    return runs


def test_cli_retries_failed_runs_by_job_class_and_exception_class():
    runs = _failures()
    out = jobs("retry", "--job", FailWithJob.job_name, "--exception", "LookupError")
    assert "2 failed run(s) queued again" in out
    retried = set(JobRun.objects.filter(status=Status.RETRIED).values_list("pk", flat=True))
    assert retried == {r.pk for r in runs["lookup"]}
    assert set(
        JobRun.objects.filter(retry_of__isnull=False).values_list("retry_of", flat=True)
    ) == (retried)
    assert "3 failed run(s)" in jobs("retry", "--exception", "ValueError")
    assert "1 failed run(s)" in jobs("retry", "--job", BrokenJob.job_name)
    with pytest.raises(CommandError, match="give a run id"):
        jobs("retry")


def test_admin_retries_by_filter_and_the_run_page_shows_lineage(client, make_user):
    runs = _failures()
    client.force_login(make_user(roles.OPERATIONS))
    filters = {"status__exact": "failed", "exception": "ValueError"}
    listing = client.get("/admin/jobs/jobrun/", filters).content.decode()
    assert listing.count('class="action-checkbox"') == 3
    # "Select all" of the filtered list: Django posts select_across with the same filters.
    response = client.post(
        "/admin/jobs/jobrun/?status__exact=failed&exception=ValueError",
        {"action": "retry_runs", "select_across": "1", "index": "0", "_selected_action": ["0"]},
        follow=True,
    )
    assert "3 run(s) retried." in response.content.decode()
    assert set(JobRun.objects.filter(status=Status.RETRIED).values_list("pk", flat=True)) == {
        r.pk for r in runs["value"]
    }
    old = runs["value"][0]
    new = JobRun.objects.get(retry_of=old)
    old_page = client.get(f"/admin/jobs/jobrun/{old.pk}/change/").content.decode()
    assert f'href="/admin/jobs/jobrun/{new.pk}/change/">run #{new.pk}</a>' in old_page
    new_page = client.get(f"/admin/jobs/jobrun/{new.pk}/change/").content.decode()
    assert f'href="/admin/jobs/jobrun/{old.pk}/change/">run #{old.pk}</a>' in new_page


def test_failed_changelist_shows_a_one_line_error_and_no_traceback(client, make_user):
    run = FailWithJob.dispatch("value", "x" * 500 + "\nsecond line")
    work_off()
    client.force_login(make_user(roles.OPERATIONS))
    page = client.get("/admin/jobs/jobrun/", {"status__exact": "failed"}).content.decode()
    row = page[page.index(f"/admin/jobs/jobrun/{run.pk}/change/") :].split("</tr>")[0]
    cells = row.split("<td")
    # The error comes right after the job, summarised to one line.
    assert "ValueError: value xxx" in cells[2]
    assert "…" in cells[2]
    assert "second line" not in row
    assert "Traceback" not in page
    detail = client.get(f"/admin/jobs/jobrun/{run.pk}/change/").content.decode()
    assert "Traceback" in detail
    assert "second line" in detail
