"""The ledger's guarantees against real `manage.py qcluster` processes and a file database."""

import itertools
import os
import signal
import time
from pathlib import Path

import pytest
from django.db import transaction

from aktina.jobs import batch, chain
from aktina.jobs.models import JobBatch, JobRun
from aktina.jobs.rawtasks import DjangoQTask
from tests.jobs.sample_jobs import (
    BrokenJob,
    CarrierJob,
    FlakyJob,
    MarkJob,
    PoisonJob,
    QuickMarkJob,
    SlowJob,
    marks_of,
)
from tests.live import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
Status = JobRun.Status
# The shortest grace qcluster accepts: it must exceed django-q2's kill margin (3.5 s).
FAST = {"JOBS_SWEEP_SECONDS": "1", "JOBS_LEASE_GRACE_SECONDS": "4", "Q_WORKERS": "2"}


def ended(*runs) -> bool:
    ids = [r.pk for r in runs]
    return not JobRun.objects.filter(pk__in=ids, status__in=JobRun.ACTIVE).exists()


def job_runs():
    """Runs of the test's jobs: django-q2 schedules (sweeper, analytics) add raw-task runs."""
    return JobRun.objects.exclude(job_name=DjangoQTask.job_name)


def all_ended() -> bool:
    return not JobRun.objects.filter(status__in=JobRun.ACTIVE).exists()


def all_asleep(pids) -> bool:
    """Every process is blocked (state S in /proc): an idle worker waits in task_queue.get(),
    the monitor in result_queue.get(); a process still starting up is running or in I/O."""

    def state(pid: int) -> str:
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return "gone"

    return bool(pids) and all(state(pid) == "S" for pid in pids)


def test_two_clusters_drain_200_jobs_exactly_once_each(live_cluster, tmp_path):
    with transaction.atomic():
        for i in range(200):
            MarkJob.dispatch(str(tmp_path), f"job{i}")
    first, second = live_cluster(**FAST), live_cluster(**FAST)
    wait_until(all_ended, timeout=120, message="200 runs to end")
    assert job_runs().filter(status=Status.SUCCEEDED).count() == 200
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
    killed_at = time.time()
    os.kill(victim_pid, signal.SIGKILL)
    # No help from the test: the sentinel sees its busy worker killed and hands the run back,
    # long before the lease (60 s timeout + grace) would run out.
    wait_until(lambda: len(marks_of(tmp_path, "victim")) >= 2, timeout=60, message="a retry")
    rerun_after = float(marks_of(tmp_path, "victim")[1][0]) - killed_at
    assert rerun_after < 10, f"re-run {rerun_after:.1f} s after the kill"
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
    wait_until(lambda: all_asleep(cluster.worker_pids()), timeout=30, message="idle workers")
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
    # all_ended: its failed() hook runs as a job of its own after the last lease expired.
    wait_until(lambda: ended(run) and all_ended(), timeout=90, message="poison run to fail")
    run.refresh_from_db()
    assert (run.status, run.attempts) == (Status.FAILED, 2)
    assert len(marks_of(tmp_path, "poison")) == 2
    assert len(marks_of(tmp_path, "poison-failed")) == 1
    # The cluster keeps serving the queue: a run dispatched after the failure ends, and the
    # poison run was not started again meanwhile.
    witness = MarkJob.dispatch(str(tmp_path), "witness")
    wait_until(lambda: ended(witness), timeout=60, message="a run after the failure")
    assert len(marks_of(tmp_path, "poison")) == 2


def test_runs_redelivered_while_they_wait_in_memory_still_run_once_each(live_cluster, tmp_path):
    # One worker, 1 s redelivery: runs wait in the cluster's memory far longer than that and are
    # handed out again and again; the claim lets only the first delivery run.
    with transaction.atomic():
        runs = [MarkJob.dispatch(str(tmp_path), f"w{i}", sleep=0.5) for i in range(8)]
    live_cluster(**{**FAST, "Q_WORKERS": "1", "JOBS_REDELIVER_SECONDS": "1"})
    wait_until(lambda: ended(*runs), timeout=60, message="runs to end")
    assert job_runs().filter(status=Status.SUCCEEDED, attempts=1).count() == 8
    assert all(len(marks_of(tmp_path, f"w{i}")) == 2 for i in range(8))


def test_rolled_back_dispatch_never_runs(live_cluster, tmp_path):
    live_cluster(**FAST)
    with pytest.raises(RuntimeError), transaction.atomic():
        MarkJob.dispatch(str(tmp_path), "ghost")
        raise RuntimeError("rollback")
    witness = MarkJob.dispatch(str(tmp_path), "witness")
    wait_until(lambda: ended(witness), timeout=60)
    assert marks_of(tmp_path, "ghost") == []
    assert job_runs().count() == 1


def test_timeout_stops_the_worker_and_fails_after_tries(live_cluster, tmp_path):
    live_cluster(**FAST)
    run = SlowJob.dispatch(str(tmp_path), 30)  # timeout 3 s, tries 2
    wait_until(lambda: ended(run) and all_ended(), timeout=90, message="slow run to fail")
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
    wait_until(lambda: job_runs().count() == 3 and all_ended(), timeout=60)
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
    # Alone it finishes in about 15 s; with a test suite and a chaos run beside it on 2 cores
    # it took over 120 s twice (a liveness wait: the assertions below are what it checks).
    wait_until(
        lambda: JobBatch.objects.get(pk=b.pk).finished_at and all_ended(),
        timeout=300,
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
    # The limiter's own start times: under load, a mark written in handle() can trail its
    # start by seconds, and two such marks can look closer together than the starts were.
    starts = sorted(float(line[2].split()[1]) for line in marks_of(tmp_path, "carrier"))
    for i, t in enumerate(starts):
        in_window = [s for s in starts[i:] if s < t + 60]
        assert len(in_window) <= 10, f"{len(in_window)} starts within 60 s from {t}"
    assert len({line[1] for line in marks_of(tmp_path, "carrier")}) >= 2
    assert not job_runs().filter(status=Status.FAILED).exists()


def test_delayed_run_starts_within_a_poll_of_being_due_with_default_settings(
    live_cluster, tmp_path
):
    live_cluster()  # the embedded default: no sweep in the path of a delay
    witness = MarkJob.dispatch(str(tmp_path), "witness")
    wait_until(lambda: ended(witness), timeout=60, message="the cluster to be up")
    run = MarkJob(str(tmp_path), "delayed").delay(3).dispatch()
    wait_until(lambda: ended(run), timeout=90)
    run.refresh_from_db()
    late = (run.started_at - run.available_at).total_seconds()
    assert 0 <= late < 1.5, f"started {late:.2f} s late"


@pytest.mark.timeout(200)
def test_cluster_killed_with_delivered_unclaimed_runs_runs_them_again_once_each(
    live_cluster, tmp_path
):
    with transaction.atomic():
        runs = [QuickMarkJob.dispatch(str(tmp_path), f"k{i}", sleep=0.3) for i in range(30)]
    env = {**FAST, "Q_WORKERS": "1", "Q_BULK": "20", "JOBS_REDELIVER_SECONDS": "3"}
    first = live_cluster(**env)
    wait_until(
        lambda: job_runs().filter(status=Status.SUCCEEDED).count() >= 2,
        timeout=60,
        message="some runs to finish",
    )
    os.killpg(first.proc.pid, signal.SIGKILL)  # the whole cluster, its memory queue with it
    first.stop()
    names = {r.pk: f"k{i}" for i, r in enumerate(runs)}
    # Issue 17: a cluster claims what it takes into memory (running, held by its process row);
    # the runs in its memory are those it held that had not started.
    in_memory = {
        pk
        for pk in job_runs().filter(status=Status.RUNNING).values_list("pk", flat=True)
        if not marks_of(tmp_path, names[pk])
    }
    assert in_memory, "the cluster should have died holding delivered, unclaimed runs"
    live_cluster(**env)
    wait_until(lambda: ended(*runs), timeout=120, message="every run to end after the kill")
    assert JobRun.objects.filter(pk__in=[r.pk for r in runs], status=Status.SUCCEEDED).count() == 30
    for pk in in_memory:
        assert [m[2] for m in marks_of(tmp_path, names[pk])] == ["start attempt=1", "end"]


@pytest.mark.timeout(200)
def test_worker_with_a_skewed_clock_cannot_expire_a_live_lease(live_cluster, tmp_path):
    """An hour ahead, the skewed cluster's sweepers would see every lease as long expired
    if they used their own clock, and take the run back while it still runs."""
    live_cluster(**FAST)
    run = MarkJob.dispatch(str(tmp_path), "long", sleep=8)
    wait_until(lambda: marks_of(tmp_path, "long"), timeout=30, message="the long run to start")
    live_cluster(AKTINA_TEST_CLOCK_SKEW_SECONDS="3600", **FAST)
    # The skewed cluster works (claims by the database's clock) and sweeps meanwhile.
    with transaction.atomic():
        short = [MarkJob.dispatch(str(tmp_path), f"s{i}") for i in range(10)]
    wait_until(lambda: ended(run, *short), timeout=90, message="runs to end")
    run.refresh_from_db()
    assert (run.status, run.attempts) == (Status.SUCCEEDED, 1)
    assert [m[2] for m in marks_of(tmp_path, "long")] == ["start attempt=1", "end"]
    assert JobRun.objects.filter(pk__in=[r.pk for r in short], attempts=1).count() == 10
