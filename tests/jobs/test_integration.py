"""The ledger's guarantees against real `manage.py qcluster` processes and a file database."""

import itertools
import os
import signal
import time

import pytest
from django.db import transaction
from django.utils import timezone

from aktina.jobs import batch, chain
from aktina.jobs.models import JobBatch, JobRun
from tests.jobs.sample_jobs import (
    BrokenJob,
    CarrierJob,
    FlakyJob,
    MarkJob,
    PoisonJob,
    SlowJob,
    marks_of,
)
from tests.live import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
Status = JobRun.Status
FAST = {"JOBS_SWEEP_SECONDS": "1", "JOBS_LEASE_GRACE_SECONDS": "1", "Q_WORKERS": "2"}


def ended(*runs) -> bool:
    ids = [r.pk for r in runs]
    return not JobRun.objects.filter(pk__in=ids, status__in=JobRun.ACTIVE).exists()


def all_ended() -> bool:
    return not JobRun.objects.filter(status__in=JobRun.ACTIVE).exists()


def test_two_clusters_drain_200_jobs_exactly_once_each(live_cluster, tmp_path):
    with transaction.atomic():
        for i in range(200):
            MarkJob.dispatch(str(tmp_path), f"job{i}")
    first, second = live_cluster(**FAST), live_cluster(**FAST)
    wait_until(all_ended, timeout=120, message="200 runs to end")
    assert JobRun.objects.filter(status=Status.SUCCEEDED).count() == 200
    starts = [marks_of(tmp_path, f"job{i}") for i in range(200)]
    assert all(len(lines) == 2 for lines in starts)  # one start + one end: ran exactly once
    pids = {lines[0][1] for lines in starts}
    assert len(pids) >= 2, "work should be shared between workers"
    del first, second


def test_worker_killed_mid_job_counts_an_attempt_and_the_run_is_retried(live_cluster, tmp_path):
    cluster = live_cluster(**FAST)
    run = MarkJob.dispatch(str(tmp_path), "victim", sleep=30)
    wait_until(lambda: marks_of(tmp_path, "victim"), timeout=30, message="job to start")
    victim_pid = int(marks_of(tmp_path, "victim")[0][1])
    os.kill(victim_pid, signal.SIGKILL)
    # MarkJob's timeout (60 s) + grace would be slow; shorten the lease of the killed attempt.
    JobRun.objects.filter(pk=run.pk).update(lease_expires_at=timezone.now())
    wait_until(lambda: len(marks_of(tmp_path, "victim")) >= 2, timeout=60, message="a retry")
    run.refresh_from_db()
    assert run.attempts == 2
    assert run.attempt_log.get().outcome == "timed_out"
    JobRun.objects.filter(pk=run.pk).update(status=Status.CANCELLED)
    cluster.stop()


def test_cluster_whose_idle_children_were_all_killed_keeps_working(live_cluster, tmp_path):
    """An idle worker waits inside the task queue's read lock and the monitor inside the result
    queue's: SIGKILL leaves those locks held, and plain django-q2 then never runs a task again
    (seen in the chaos run). Our sentinel resets the pool instead."""
    cluster = live_cluster(**FAST)
    wait_until(lambda: len(cluster.worker_pids()) >= 4, timeout=30, message="workers to spawn")
    time.sleep(1)  # let the workers reach task_queue.get()
    killed = cluster.worker_pids()
    for pid in killed:
        os.kill(pid, signal.SIGKILL)
    with transaction.atomic():
        runs = [MarkJob.dispatch(str(tmp_path), f"after-kill{i}") for i in range(20)]
    wait_until(lambda: ended(*runs), timeout=60, message="runs dispatched after the kill")
    assert JobRun.objects.filter(pk__in=[r.pk for r in runs], status=Status.SUCCEEDED).count() == 20
    assert not set(cluster.worker_pids()) & set(killed)
    assert "resetting" in cluster.log_path.read_text()


def test_poison_pill_fails_after_tries_and_is_not_redelivered_forever(live_cluster, tmp_path):
    live_cluster(**FAST)
    run = PoisonJob.dispatch(str(tmp_path))
    wait_until(lambda: ended(run), timeout=90, message="poison run to fail")
    run.refresh_from_db()
    assert (run.status, run.attempts) == (Status.FAILED, 2)
    assert len(marks_of(tmp_path, "poison")) == 2
    assert len(marks_of(tmp_path, "poison-failed")) == 1
    time.sleep(3)
    assert len(marks_of(tmp_path, "poison")) == 2


def test_job_longer_than_the_broker_retry_window_runs_once(live_cluster, tmp_path):
    # django-q2 redelivers the message after Q_RETRY seconds while the job still runs.
    live_cluster(Q_RETRY="2", **FAST)
    run = MarkJob.dispatch(str(tmp_path), "long", sleep=7)
    wait_until(lambda: ended(run), timeout=60, message="long run to end")
    run.refresh_from_db()
    assert (run.status, run.attempts) == (Status.SUCCEEDED, 1)
    assert [line[2] for line in marks_of(tmp_path, "long")] == ["start attempt=1", "end"]


def test_rolled_back_dispatch_never_runs(live_cluster, tmp_path):
    live_cluster(**FAST)
    with pytest.raises(RuntimeError), transaction.atomic():
        MarkJob.dispatch(str(tmp_path), "ghost")
        raise RuntimeError("rollback")
    witness = MarkJob.dispatch(str(tmp_path), "witness")
    wait_until(lambda: ended(witness), timeout=60)
    assert marks_of(tmp_path, "ghost") == []
    assert JobRun.objects.count() == 1


def test_timeout_stops_the_worker_and_fails_after_tries(live_cluster, tmp_path):
    live_cluster(**FAST)
    run = SlowJob.dispatch(str(tmp_path), 30)  # timeout 3 s, tries 2
    wait_until(lambda: ended(run), timeout=90, message="slow run to fail")
    run.refresh_from_db()
    assert (run.status, run.attempts) == (Status.FAILED, 2)
    assert marks_of(tmp_path, "slow-end") == []
    assert len(marks_of(tmp_path, "slow-failed")) == 1
    assert "timeout" in run.last_error


def test_backoff_sequence_is_respected_between_attempts(live_cluster, tmp_path):
    live_cluster(**FAST)
    run = FlakyJob.dispatch(str(tmp_path), 2)  # backoff [1, 2, 4]
    wait_until(lambda: ended(run), timeout=60)
    times = [float(line[0]) for line in marks_of(tmp_path, "flaky")]
    assert len(times) == 3
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps[0] >= 0.9
    assert gaps[1] >= 1.8


def test_chain_stops_at_failure_and_runs_catch_once(live_cluster, tmp_path):
    live_cluster(**FAST)
    marks = str(tmp_path)
    chain(MarkJob(marks, "a"), BrokenJob(marks), MarkJob(marks, "c")).catch(
        MarkJob(marks, "caught")
    ).dispatch()
    wait_until(lambda: JobRun.objects.count() == 3 and all_ended(), timeout=60)
    assert len(marks_of(marks, "caught")) == 2
    assert marks_of(marks, "c") == []


def test_batch_with_failing_timing_out_and_killed_members_finishes_exactly_once(
    live_cluster, tmp_path
):
    live_cluster(**FAST)
    marks = str(tmp_path)
    b = (
        batch([MarkJob(marks, "ok"), BrokenJob(marks), SlowJob(marks, 30), PoisonJob(marks)])
        .then(MarkJob(marks, "then"))
        .catch(MarkJob(marks, "catch"))
        .finally_(MarkJob(marks, "finally"))
        .dispatch()
    )
    wait_until(
        lambda: JobBatch.objects.get(pk=b.pk).finished_at and all_ended(),
        timeout=120,
        message="batch to finish",
    )
    b.refresh_from_db()
    assert (b.total, b.pending, b.failed) == (4, 0, 3)
    assert len(marks_of(marks, "catch")) == 2
    assert len(marks_of(marks, "finally")) == 2
    assert marks_of(marks, "then") == []


@pytest.mark.timeout(400)
def test_rate_limit_holds_across_two_clusters(live_cluster, tmp_path):
    with transaction.atomic():
        for i in range(25):
            CarrierJob.dispatch(str(tmp_path), i)
    live_cluster(**FAST)
    live_cluster(**FAST)
    wait_until(lambda: len(marks_of(tmp_path, "carrier")) >= 20, timeout=150)
    starts = sorted(float(line[0]) for line in marks_of(tmp_path, "carrier"))
    for i, t in enumerate(starts):
        in_window = [s for s in starts[i:] if s < t + 60]
        assert len(in_window) <= 10, f"{len(in_window)} starts within 60 s from {t}"
    assert len({line[1] for line in marks_of(tmp_path, "carrier")}) >= 2
    assert not JobRun.objects.filter(status=Status.FAILED).exists()


def test_delayed_run_starts_soon_after_it_is_due_with_default_settings(live_cluster, tmp_path):
    live_cluster()  # the embedded default: JOBS_SWEEP_SECONDS=5
    run = MarkJob(str(tmp_path), "delayed").delay(3).dispatch()
    wait_until(lambda: ended(run), timeout=90)
    run.refresh_from_db()
    late = (run.started_at - run.available_at).total_seconds()
    assert 0 <= late < 60


def test_message_lost_by_the_broker_is_resent_and_the_run_ends(live_cluster, tmp_path):
    from django_q.models import OrmQ

    # Dispatch with no cluster running, then lose the message: a Redis broker dropping
    # in-flight work, or a web process dying between commit and send, look the same.
    run = MarkJob.dispatch(str(tmp_path), "lost")
    OrmQ.objects.all().delete()
    live_cluster(JOBS_RESEND_AFTER_SECONDS="2", **FAST)
    wait_until(lambda: ended(run), timeout=60, message="lost run to be re-sent and run")
    run.refresh_from_db()
    assert run.status == Status.SUCCEEDED
    assert len(marks_of(tmp_path, "lost")) == 2


def _redis_answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.mark.timeout(300)
def test_redis_broker_cluster_killed_with_messages_in_flight_loses_nothing(live_cluster, tmp_path):
    import redis
    from django_q.models import OrmQ

    url = "redis://127.0.0.1:6379/12"
    if not _redis_answers(url):
        pytest.skip("Redis is not answering on 127.0.0.1:6379")
    redis.Redis.from_url(url).flushdb()
    env = {
        "Q_BROKER": "redis",
        "REDIS_URL": url,
        "JOBS_RESEND_AFTER_SECONDS": "3",
        "Q_BULK": "5",
        **FAST,
    }
    with transaction.atomic():
        runs = [MarkJob.dispatch(str(tmp_path), f"r{i}", sleep=0.2) for i in range(40)]
    # This process sends through the ORM broker; make every message "lost" so the clusters'
    # sweepers re-send them through Redis, the broker under test.
    OrmQ.objects.all().delete()
    JobRun.objects.update(sent_at=timezone.now() - timezone.timedelta(minutes=10))
    first = live_cluster(**env)
    wait_until(
        lambda: JobRun.objects.filter(status=Status.SUCCEEDED).count() >= 5,
        timeout=60,
        message="some runs to finish",
    )
    # The Redis broker has no acknowledgement: whatever the cluster pulled is gone with it.
    os.killpg(first.proc.pid, signal.SIGKILL)
    first.stop()
    # Let the killed attempts' leases (60 s timeout) run out now rather than in a minute.
    JobRun.objects.filter(status=Status.RUNNING).update(lease_expires_at=timezone.now())
    live_cluster(**env)
    wait_until(lambda: ended(*runs), timeout=180, message="every run to end after the crash")
    assert JobRun.objects.filter(status=Status.SUCCEEDED).count() == 40
    assert all(marks_of(tmp_path, f"r{i}") for i in range(40))
