"""The ledger's promises where clocks, hostnames, late finishes and listeners could break them."""

import contextlib
import datetime as dt
import os
import signal
import subprocess
import sys

import pytest
from django.db import transaction
from django.utils import timezone

from aktina.jobs import chain, job_dispatched, job_failed
from aktina.jobs.dispatching import UniqueRunActive
from aktina.jobs.lifecycle import run_claim, run_error, run_fail, run_release, run_succeed
from aktina.jobs.models import JobAttempt, JobRun
from aktina.jobs.sentinel import runs_hand_back
from aktina.jobs.sweeper import runs_expire_leases
from aktina.jobs.testing import work_off
from aktina.jobs.worker import BOOT_ENV, execute, worker_id
from tests.jobs.sample_jobs import MarkJob, NoopJob, SlowJob, UniqueJob, marks_of
from tests.live import ROOT, process_env

Status = JobRun.Status


# --- after-commit steps never fail the caller ----------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_a_failing_after_commit_listener_never_fails_the_caller_nor_later_callbacks():
    def broken_listener(sender, run, **kwargs):
        raise ConnectionError("listener's service is down")

    later = []
    job_dispatched.connect(broken_listener, weak=False)
    try:
        with transaction.atomic():
            run = NoopJob.dispatch(1)
            transaction.on_commit(lambda: later.append("ran"))
    finally:
        job_dispatched.disconnect(broken_listener)
    assert JobRun.objects.filter(pk=run.pk, status=Status.QUEUED).exists()
    assert later == ["ran"]


# --- one clock: the database's -------------------------------------------------------------------
@pytest.mark.django_db
def test_claim_and_lease_use_the_database_clock_not_the_workers(monkeypatch):
    run = NoopJob.dispatch(1)
    real_now = timezone.now
    # This worker's clock is an hour behind: by its own clock the run would not be due yet,
    # and its lease would have run out an hour ago for everybody else.
    monkeypatch.setattr(timezone, "now", lambda: real_now() - dt.timedelta(hours=1))
    claimed = run_claim(run_id=run.pk, timeout=60, worker="w", grace=5)
    assert claimed is not None
    lease_left = (claimed.lease_expires_at - real_now()).total_seconds()
    assert 55 < lease_left <= 65
    assert runs_expire_leases() == 0


# --- worker ids: unique per process start --------------------------------------------------------
@pytest.mark.django_db(transaction=True)  # the hand-back closes its connections, as a sentinel
def test_two_hosts_with_the_same_hostname_and_pid_never_hand_back_each_others_runs(monkeypatch):
    monkeypatch.setattr("socket.gethostname", lambda: "web")
    run = NoopJob.dispatch(1)
    # Host B's worker, pid 7, claims the run.
    monkeypatch.setenv(BOOT_ENV, "host-b")
    claimed = run_claim(run_id=run.pk, timeout=60, worker=worker_id(7), grace=5)
    assert claimed is not None
    # Host A's sentinel saw its own pid 7 die and hands back what "pid 7" was running.
    monkeypatch.setenv(BOOT_ENV, "host-a")
    assert worker_id(7) != claimed.worker
    assert runs_hand_back(worker_pids=[7]) == 0
    run.refresh_from_db()
    assert (run.status, run.attempts) == (Status.RUNNING, 1)
    # Host B's own sentinel does hand it back.
    monkeypatch.setenv(BOOT_ENV, "host-b")
    assert runs_hand_back(worker_pids=[7]) == 1
    run.refresh_from_db()
    assert run.status != Status.RUNNING
    assert run.attempt_log.get().outcome == JobAttempt.Outcome.TIMED_OUT


# --- lease grace must outlast django-q2's kill margin --------------------------------------------
# transaction=True: a test transaction holds SQLite's write lock (IMMEDIATE), and Django 6.1's
# command checks then see a locked database as one without JSON support.
@pytest.mark.django_db(transaction=True)
def test_qcluster_refuses_to_start_when_the_grace_does_not_exceed_the_kill_margin():
    env = process_env(JOBS_LEASE_GRACE_SECONDS="3")
    env["DJANGO_SETTINGS_MODULE"] = "aktina.settings"
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        _out, err = proc.communicate(timeout=60)
    finally:
        # Should the check ever fail, a cluster started: stop its whole group, not just qcluster.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "JOBS_LEASE_GRACE_SECONDS=3 must exceed" in lines[0]


# --- the stale-attempt rule: only the attempt holding the lease may finish the run ---------------
def _claim(run):
    return run_claim(run_id=run.pk, timeout=run.timeout, worker="w", grace=5)


def _taken_back_and_reclaimed(run):
    """Attempt 1's lease runs out, the sweeper takes the run back, attempt 2 claims it."""
    first = _claim(run)
    JobRun.objects.filter(pk=run.pk).update(lease_expires_at=timezone.now() - dt.timedelta(1))
    assert runs_expire_leases() == 1
    second = _claim(run)
    assert (first.attempts, second.attempts) == (1, 2)
    return first, second


@pytest.mark.django_db
def test_execute_does_not_report_success_for_an_attempt_that_lost_its_lease(tmp_path):
    run = MarkJob.dispatch(str(tmp_path), "late")
    stale, _current = _taken_back_and_reclaimed(run)
    assert execute(stale) == "stale"
    run.refresh_from_db()
    assert (run.status, run.attempts) == (Status.RUNNING, 2)


@pytest.mark.django_db
def test_a_stale_attempt_can_neither_succeed_fail_retry_nor_release_the_run(tmp_path):
    run = SlowJob.dispatch(str(tmp_path), 0)
    stale, current = _taken_back_and_reclaimed(run)
    job = None
    assert run_succeed(run=stale) is False
    assert run_error(run=stale, job=job, exc=RuntimeError("late"), permanent=False) != "queued"
    assert run_fail(run=stale, job=job, exc=RuntimeError("late"), outcome="failed") != "failed"
    assert run_release(run=stale, delay=0) is False
    run.refresh_from_db()
    assert (run.status, run.attempts, run.worker) == (Status.RUNNING, 2, current.worker)
    assert run.attempt_log.filter(outcome=JobAttempt.Outcome.FAILED).count() == 0
    assert run_succeed(run=current) is True
    run.refresh_from_db()
    assert run.status == Status.SUCCEEDED


# --- a chain whose first link is unique and already active ---------------------------------------
@pytest.mark.django_db
def test_chain_whose_unique_first_link_is_active_is_refused_not_dropped(tmp_path):
    active = UniqueJob.dispatch("a")
    with pytest.raises(UniqueRunActive, match=f"active run #{active.pk}"):
        chain(UniqueJob("a"), MarkJob(str(tmp_path), "next")).dispatch()
    assert list(JobRun.objects.values_list("pk", flat=True)) == [active.pk]
    active.refresh_from_db()
    assert active.chain == []
    # Alone, a unique dispatch still returns the active run, as before.
    assert UniqueJob.dispatch("a").pk == active.pk


# --- the guard loop only writes rows -------------------------------------------------------------
@pytest.mark.django_db
def test_expired_last_lease_defers_failed_hook_and_listeners_to_a_worker_job(tmp_path):
    heard = []

    def listener(sender, run, exception_text="", **kwargs):
        heard.append(run.pk)

    run = SlowJob.dispatch(str(tmp_path), 0)
    JobRun.objects.filter(pk=run.pk).update(
        status=Status.RUNNING,
        attempts=2,
        lease_expires_at=timezone.now() - dt.timedelta(seconds=1),
    )
    job_failed.connect(listener, weak=False)
    try:
        assert runs_expire_leases() == 1  # what the sentinel's hand-back and the sweeper call
        assert (heard, marks_of(tmp_path, "slow-failed")) == ([], [])
        work_off()
    finally:
        job_failed.disconnect(listener)
    assert heard == [run.pk]
    assert len(marks_of(tmp_path, "slow-failed")) == 1
