"""The ledger as django-q2's broker: what dequeue hands out, in which order, and how often."""

import datetime as dt

import pytest
from django.db import transaction
from django.utils import timezone
from django_q.signing import SignedPackage
from django_q.tasks import async_task

from aktina.jobs.broker import LedgerBroker
from aktina.jobs.lifecycle import runs_claim
from aktina.jobs.models import JobProcess, JobRun
from aktina.jobs.processes import process_register, runs_rescue
from aktina.jobs.rawtasks import DjangoQTask
from aktina.jobs.testing import work_off
from aktina.jobs.worker import Outcome, perform_claimed
from tests.jobs.sample_jobs import MarkJob, NoopJob, marks_of

pytestmark = pytest.mark.django_db
Status = JobRun.Status


def _broker(list_key: str) -> LedgerBroker:
    broker = LedgerBroker(list_key=list_key)
    broker.holder_id = 1
    return broker


def _delivered_ids(broker: LedgerBroker) -> list[int]:
    return [ack_id for ack_id, _ in broker.dequeue() or []]


def _claim(limit: int, holder_id: int = 1) -> list[tuple[int, int]]:
    runs = runs_claim(queues=["default"], limit=limit, holder_id=holder_id, worker="w")
    return [(run.pk, run.timeout) for run in runs]


def test_dequeue_hands_out_due_runs_by_priority_then_available_at(settings):
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "bulk": 3}
    now = timezone.now()
    old_low = NoopJob.dispatch(1)
    JobRun.objects.filter(pk=old_low.pk).update(available_at=now - dt.timedelta(minutes=5))
    newer = NoopJob.dispatch(2)
    older = NoopJob.dispatch(3)
    JobRun.objects.filter(pk=older.pk).update(available_at=now - dt.timedelta(minutes=1))
    urgent = NoopJob.dispatch(4)
    JobRun.objects.filter(pk=urgent.pk).update(priority=50)
    later = NoopJob(5).delay(60).dispatch()

    delivered = _claim(3)

    assert [run_id for run_id, _ in delivered] == [urgent.pk, old_low.pk, older.pk]
    rest = _claim(3)
    assert [run_id for run_id, _ in rest] == [newer.pk]  # claimed ones are not handed out again
    assert later.pk not in [r for r, _ in delivered + rest]


def test_run_claimed_by_a_cluster_that_died_is_handed_back_once_its_heartbeat_is_stale(
    settings, tmp_path
):
    settings.JOBS_PROCESS_STALE_SECONDS = 20
    started, waiting = MarkJob.dispatch(str(tmp_path), "a"), MarkJob.dispatch(str(tmp_path), "b")
    dead = process_register(kind="cluster", cluster="aktina", queues=["default"], boot="b1")
    assert _claim(10, holder_id=dead.pk) == [(started.pk, 60), (waiting.pk, 60)]
    assert _claim(10) == []  # held: no other cluster takes them
    # Its last heartbeat said `started` was in a worker's hands; `waiting` was still in memory.
    JobProcess.objects.filter(pk=dead.pk).update(running=[started.pk])
    assert runs_rescue() == 0  # heartbeat still fresh: the cluster is alive
    JobProcess.objects.filter(pk=dead.pk).update(
        last_seen=timezone.now() - dt.timedelta(seconds=21)
    )
    assert runs_rescue() == 2
    started.refresh_from_db()
    waiting.refresh_from_db()
    # The one that started counted an attempt (so a poison pill stops); the other did not.
    assert (started.status, started.attempts, started.holder_id) == (Status.QUEUED, 1, None)
    assert (waiting.status, waiting.attempts, waiting.holder_id) == (Status.QUEUED, 0, None)
    assert "stopped sending heartbeats" in started.attempt_log.get().error
    assert not JobProcess.objects.filter(pk=dead.pk).exists()
    assert sorted(_claim(10)) == sorted([(started.pk, 60), (waiting.pk, 60)])


def test_dequeue_serves_only_the_clusters_queues(settings):
    settings.JOBS_DEDICATED_QUEUES = ["urgent"]
    urgent = NoopJob(1).on_queue("urgent").dispatch()
    plain = NoopJob(2).dispatch()
    assert _delivered_ids(_broker("urgent")) == [urgent.pk]
    assert _delivered_ids(_broker(settings.JOBS_DEFAULT_CLUSTER)) == [plain.pk]


def test_message_carries_the_claimed_run_and_the_worker_claims_nothing(
    tmp_path, django_assert_num_queries
):
    run = MarkJob.dispatch(str(tmp_path), "via-message")
    [(ack_id, package)] = _broker("aktina").dequeue()
    task = SignedPackage.loads(package)
    assert (ack_id, task["func"], task["timeout"]) == (
        run.pk,
        "aktina.jobs.worker.perform_claimed",
        run.timeout,
    )
    [claimed] = task["args"]
    assert (claimed.pk, claimed.status, claimed.attempts) == (run.pk, Status.RUNNING, 1)
    # The worker's whole cost for a success: no statement (the completer writes it).
    with django_assert_num_queries(0):
        assert perform_claimed(claimed) == Outcome.COMPLETING
    assert len(marks_of(tmp_path, "via-message")) == 2
    run.refresh_from_db()
    assert (run.status, run.holder_id) == (Status.RUNNING, 1)


def test_a_claimed_run_waiting_in_memory_is_not_timed_out_by_the_sweeper():
    """Held runs have no lease: the time they wait for a worker is not their timeout."""
    from aktina.jobs.sweeper import runs_expire_leases

    run = NoopJob.dispatch(1)
    _claim(10)
    JobRun.objects.filter(pk=run.pk).update(started_at=timezone.now() - dt.timedelta(hours=1))
    assert runs_expire_leases() == 0
    run.refresh_from_db()
    assert (run.status, run.attempts) == (Status.RUNNING, 1)


def test_raw_async_task_becomes_a_ledger_run_and_runs(tmp_path):
    with transaction.atomic():
        async_task("tests.jobs.sample_jobs.mark", str(tmp_path), "raw", "ran")
    run = JobRun.objects.get()
    assert (run.job_name, run.queue, run.status) == (DjangoQTask.job_name, "default", "queued")
    work_off()
    run.refresh_from_db()
    assert run.status == Status.SUCCEEDED
    assert [m[2] for m in marks_of(tmp_path, "raw")] == ["ran"]


def test_raw_task_package_not_signed_with_our_key_is_refused(tmp_path):
    from django_q import core_signing
    from django_q.conf import Conf
    from django_q.signing import PickleSerializer

    async_task("tests.jobs.sample_jobs.mark", str(tmp_path), "signed")
    run = JobRun.objects.get()
    # A row written by someone without SECRET_KEY: a package naming a function of their choice.
    task = {"func": "tests.jobs.sample_jobs.mark", "args": (str(tmp_path), "forged"), "kwargs": {}}
    forged = core_signing.dumps(
        task, key="not-our-key-" + "x" * 40, salt=Conf.PREFIX, serializer=PickleSerializer
    )
    JobRun.objects.filter(pk=run.pk).update(payload={"args": [forged], "kwargs": {}})
    work_off()
    run.refresh_from_db()
    assert run.status == Status.FAILED
    assert "refused" in run.last_error
    assert marks_of(tmp_path, "forged") == []
    assert marks_of(tmp_path, "signed") == []


@pytest.mark.django_db(transaction=True)  # django-q2's scheduler closes old connections
def test_a_django_q2_schedule_due_now_becomes_a_ledger_run(tmp_path):
    from django_q.models import Schedule
    from django_q.scheduler import scheduler

    Schedule.objects.all().delete()
    Schedule.objects.create(
        func="tests.jobs.sample_jobs.mark",
        args=f"{str(tmp_path)!r}, 'scheduled', 'ran'",
        schedule_type=Schedule.ONCE,
        next_run=timezone.now() - dt.timedelta(seconds=1),
    )
    scheduler(broker=LedgerBroker(list_key="aktina"))  # what the sentinel does every 30 s
    run = JobRun.objects.get()
    assert run.job_name == DjangoQTask.job_name
    work_off()
    assert [m[2] for m in marks_of(tmp_path, "scheduled")] == ["ran"]


def test_dequeue_delivers_nothing_of_a_paused_queue_until_it_is_resumed():
    from aktina.jobs.pausing import queue_pause, queue_resume

    paused = NoopJob(1).on_queue("notifications").dispatch()
    other = NoopJob(2).dispatch()
    queue_pause(queue="notifications")
    assert _delivered_ids(_broker("aktina")) == [other.pk]
    queue_resume(queue="notifications")
    assert _delivered_ids(_broker("aktina")) == [paused.pk]


def test_every_microsecond_of_the_current_millisecond_is_already_past():
    # SQLite's clock ticks in milliseconds and compares text; Django writes microseconds. A
    # run dispatched inside the database's current millisecond ("...mmm456") must not sort
    # after "now", or the broker skips it and the claim refuses it until the clock ticks.
    from django.db import connection

    from aktina.jobs.clock import now_sql

    if connection.vendor != "sqlite":
        pytest.skip("PostgreSQL's clock_timestamp() has microseconds: nothing to round")
    with connection.cursor() as cursor:
        # One statement: SQLite's 'now' is the same for all of it.
        cursor.execute(
            f"SELECT strftime('%Y-%m-%d %H:%M:%f', 'now'), {now_sql()}".replace("%%", "%")
        )
        millisecond, now = cursor.fetchone()
    start = dt.datetime.fromisoformat(millisecond)
    for micro in (0, 1, 456, 999):
        written = connection.ops.adapt_datetimefield_value(start + dt.timedelta(microseconds=micro))
        assert written <= now, (written, now)
