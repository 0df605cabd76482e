"""The operations API (/api/jobs/): reads with jobs.view_jobrun, writes with jobs.operate_jobs;
every write, allowed or refused, is checked against the ledger's state afterwards."""

import datetime as dt

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from aktina.core import roles
from aktina.jobs.models import JobAttempt, JobRun, QueuePause
from tests.factories import OrderFactory
from tests.jobs.sample_jobs import NoopJob, TaggedJob
from tests.security.conftest import ROLES, client_as, people  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db
Status = JobRun.Status
RUNS = "/api/jobs/runs/"


@pytest.fixture
def ops(make_user):
    client = APIClient()
    client.force_authenticate(make_user(roles.OPERATIONS))
    return client


def _failed(**extra) -> JobRun:
    run = NoopJob.dispatch(**extra)
    JobRun.objects.filter(pk=run.pk).update(
        status=Status.FAILED, attempts=1, finished_at=timezone.now(), last_error="Boom: no"
    )
    JobAttempt.objects.create(
        run=run, number=1, outcome="failed", finished_at=timezone.now(), error="Boom: no"
    )
    run.refresh_from_db()
    return run


def _error(response, code: str, kind: str = "client_error") -> dict:
    body = response.json()
    assert body["type"] == kind, body
    assert body["errors"][0]["code"] == code, body
    return body["errors"][0]


def test_list_filters_by_queue_status_job_tag_and_time(ops):
    order = OrderFactory()
    tagged = TaggedJob.dispatch("x", order=order)
    plain = NoopJob.dispatch()
    failed = _failed()
    old = NoopJob.dispatch()
    JobRun.objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(days=2))

    def ids(**params):
        response = ops.get(RUNS, params)
        assert response.status_code == 200, response.content
        return [r["id"] for r in response.json()["results"]]

    assert ids(status="failed") == [failed.pk]
    assert ids(tag=f"order:{order.pk}") == [tagged.pk]
    assert set(ids(job="tests.jobs.sample_jobs.NoopJob")) == {plain.pk, failed.pk, old.pk}
    assert ids(queue="default", job="tests.jobs.sample_jobs.TaggedJob") == [tagged.pk]
    since = (timezone.now() - dt.timedelta(days=1)).isoformat()
    assert old.pk not in ids(created_after=since)
    assert ids(created_before=since) == [old.pk]
    _error(ops.get(RUNS, {"queue": "nope"}), "invalid_choice", kind="validation_error")


def test_list_is_newest_first_without_counting_the_ledger(ops, django_assert_max_num_queries):
    for _ in range(30):
        NoopJob.dispatch()
    with django_assert_max_num_queries(3):  # session-less auth: the page of runs, nothing else
        body = ops.get(RUNS, {"page_size": 10}).json()
    assert [r["id"] for r in body["results"]] == sorted(
        (r["id"] for r in body["results"]), reverse=True
    )
    assert "count" not in body
    assert body["next"]


def test_a_raw_task_is_listed_and_filtered_by_its_function(ops):
    from django_q.tasks import async_task

    async_task("math.sqrt", -1)
    run = JobRun.objects.get(task_function="math.sqrt")
    listed = ops.get(RUNS, {"job": "math.sqrt"}).json()["results"]
    assert [(r["id"], r["job"]) for r in listed] == [(run.pk, "math.sqrt")]
    detail = ops.get(f"{RUNS}{run.pk}/").json()
    assert detail["arguments"]["function"] == "math.sqrt"
    assert detail["arguments"]["args"] == "(-1,)"


def test_one_run_with_its_attempts_tags_and_arguments(ops):
    run = _failed()
    body = ops.get(f"{RUNS}{run.pk}/").json()
    assert body["status"] == "failed"
    assert [(a["number"], a["outcome"], a["error"]) for a in body["attempt_log"]] == [
        (1, "failed", "Boom: no")
    ]
    assert body["arguments"]["kind"] == "job"


def test_retry_allowed_makes_a_new_run_and_marks_the_old_one(ops):
    run = _failed()
    response = ops.post(f"{RUNS}{run.pk}/retry/")
    assert response.status_code == 201, response.content
    new = JobRun.objects.get(pk=response.json()["id"])
    assert (new.status, new.retry_of_id) == (Status.QUEUED, run.pk)
    assert JobRun.objects.get(pk=run.pk).status == Status.RETRIED


def test_retry_of_a_queued_run_is_a_conflict_and_changes_nothing(ops):
    run = NoopJob.dispatch()
    response = ops.post(f"{RUNS}{run.pk}/retry/")
    assert response.status_code == 409
    _error(response, "run_not_changeable")
    assert JobRun.objects.get(pk=run.pk).status == Status.QUEUED
    assert JobRun.objects.count() == 1


def test_cancel_allowed_and_refused(ops):
    queued, running = NoopJob.dispatch(), NoopJob.dispatch()
    JobRun.objects.filter(pk=running.pk).update(status=Status.RUNNING)
    assert ops.post(f"{RUNS}{queued.pk}/cancel/").json()["status"] == "cancelled"
    assert JobRun.objects.get(pk=queued.pk).status == Status.CANCELLED
    response = ops.post(f"{RUNS}{running.pk}/cancel/")
    assert response.status_code == 409
    assert "only queued runs" in _error(response, "run_not_changeable")["detail"]
    assert JobRun.objects.get(pk=running.pk).status == Status.RUNNING


def test_pause_and_resume_a_queue(ops):
    response = ops.post("/api/jobs/queues/default/pause/")
    assert response.status_code == 200
    assert response.json()["paused"] is True
    assert QueuePause.objects.filter(queue="default").exists()
    assert ops.post("/api/jobs/queues/default/resume/").json()["paused"] is False
    assert not QueuePause.objects.exists()
    assert ops.post("/api/jobs/queues/nope/pause/").status_code == 404
    assert not QueuePause.objects.exists()


def test_queue_list_has_every_configured_queue(ops, settings):
    body = ops.get("/api/jobs/queues/").json()
    assert [q["queue"] for q in body] == list(settings.JOBS_QUEUES)


def test_the_operations_api_is_in_the_schema(ops):
    paths = APIClient().get("/api/schema/?format=json").json()["paths"]
    for path, method in [
        ("/api/jobs/runs/", "get"),
        ("/api/jobs/runs/{id}/", "get"),
        ("/api/jobs/runs/{id}/retry/", "post"),
        ("/api/jobs/runs/{id}/cancel/", "post"),
        ("/api/jobs/queues/", "get"),
        ("/api/jobs/queues/{queue}/pause/", "post"),
        ("/api/jobs/queues/{queue}/resume/", "post"),
    ]:
        operation = paths[path][method]
        if method == "post" and "runs" in path:
            assert {"403", "409"} <= set(operation["responses"])


def test_every_operations_endpoint_has_a_matrix_row():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    ours = {
        (m.upper(), p)
        for p, ops in schema["paths"].items()
        for m in ops
        if p.startswith("/api/jobs/")
    }
    from tests.security.test_authorization_matrix import API

    assert ours <= set(API)  # who may call each one is decided there, with state checks


# --- terminate (issue 18, defect 5) -------------------------------------------------------------
def _running_in_a_cluster(run: JobRun) -> JobRun:
    from aktina.jobs.lifecycle import runs_claim
    from aktina.jobs.processes import process_register

    cluster = process_register(kind="cluster", cluster="c1", queues=["default"], boot="b1")
    [claimed] = [
        c
        for c in runs_claim(queues=["default"], limit=100, holder_id=cluster.pk, worker="w")
        if c.pk == run.pk
    ]
    return claimed


def test_terminate_marks_a_running_run_and_the_guard_ends_it_cancelled_by_whom(ops):
    from aktina.jobs.clock import db_now
    from aktina.jobs.lifecycle import run_terminated

    run = _running_in_a_cluster(NoopJob.dispatch(1))
    queued = NoopJob.dispatch(2)
    error = _error(ops.post(f"{RUNS}{queued.pk}/terminate/"), "run_not_changeable")
    assert "only a run running in a cluster" in error["detail"]
    assert JobRun.objects.get(pk=queued.pk).terminate_requested_by in ("", None)

    response = ops.post(f"{RUNS}{run.pk}/terminate/")

    assert response.status_code == 200, response.content
    run.refresh_from_db()
    who = ops.handler._force_user.get_username()
    assert response.json()["terminate_requested_by"] == who
    assert (run.status, run.terminate_requested_by) == (Status.RUNNING, who)
    # What the holding cluster's guard does once it has stopped the worker:
    assert run_terminated(run=run, now=db_now()) == Status.CANCELLED
    run.refresh_from_db()
    assert run.status == Status.CANCELLED
    assert f"Terminated by {who}" in run.last_error


def test_clusters_lists_live_clusters_their_workers_and_held_runs(ops):
    from aktina.jobs.processes import process_register, processes_heartbeat

    run = _running_in_a_cluster(NoopJob.dispatch(1))
    cluster = JobRun.objects.get(pk=run.pk).holder
    process_register(kind="worker", cluster="c1", queues=["default"], boot="b1", pid=4242)
    processes_heartbeat(cluster_id=cluster.pk, boot="b1", running=[run.pk])

    response = ops.get("/api/jobs/clusters/")

    assert response.status_code == 200, response.content
    [c] = response.json()["live"]
    assert (c["name"], c["pid"], c["queues"]) == ("c1", cluster.pid, ["default"])
    assert [w["pid"] for w in c["workers"]] == [4242]
    [held] = c["held_runs"]
    assert (held["id"], held["job"], held["in_worker"]) == (run.pk, "NoopJob", True)
    assert response.json()["lost"] == []
