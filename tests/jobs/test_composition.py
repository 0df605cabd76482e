"""Batches and middleware, inline."""

import datetime as dt

import pytest
from django.utils import timezone

from aktina.jobs import batch, batch_cancel
from aktina.jobs.models import JobBatch, JobRun, RateLimitWindow
from aktina.jobs.sweeper import runs_expire_leases
from aktina.jobs.testing import work_off
from aktina.jobs.worker import perform
from tests.jobs.sample_jobs import (
    BrokenJob,
    CarrierJob,
    ExclusiveJob,
    MarkJob,
    SlowJob,
    marks_of,
)

pytestmark = pytest.mark.django_db
Status = JobRun.Status


def _callbacks(marks):
    return MarkJob(marks, "then"), MarkJob(marks, "catch"), MarkJob(marks, "finally")


def test_batch_all_succeed_runs_then_and_finally_once(tmp_path):
    marks = str(tmp_path)
    then, catch, fin = _callbacks(marks)
    b = (
        batch([MarkJob(marks, f"m{i}") for i in range(3)], name="ok")
        .then(then)
        .catch(catch)
        .finally_(fin)
        .dispatch()
    )
    assert (b.total, b.pending, b.progress) == (3, 3, 0)
    work_off()
    b.refresh_from_db()
    assert (b.pending, b.failed, b.progress) == (0, 0, 100)
    assert b.finished_at
    assert len(marks_of(marks, "then")) == 2
    assert len(marks_of(marks, "finally")) == 2
    assert marks_of(marks, "catch") == []


def test_batch_with_failing_and_timed_out_members_runs_catch_once_and_finally_once(tmp_path):
    marks = str(tmp_path)
    then, catch, fin = _callbacks(marks)
    b = (
        batch([MarkJob(marks, "fine"), BrokenJob(marks), BrokenJob(marks), SlowJob(marks, 0)])
        .then(then)
        .catch(catch)
        .finally_(fin)
        .dispatch()
    )
    slow = JobRun.objects.get(batch=b, job_name__endswith="SlowJob")
    # The slow member's worker "dies" on both tries: the lease expires each time.
    for attempt in (1, 2):
        JobRun.objects.filter(pk=slow.pk).update(
            status=Status.RUNNING,
            attempts=attempt,
            available_at=timezone.now(),
            lease_expires_at=timezone.now() - dt.timedelta(seconds=1),
        )
        runs_expire_leases()
    work_off()
    b.refresh_from_db()
    assert (b.pending, b.failed) == (0, 3)
    assert len(marks_of(marks, "catch")) == 2  # start + end of exactly one run
    assert len(marks_of(marks, "finally")) == 2
    assert marks_of(marks, "then") == []


def test_empty_batch_finishes_at_once(tmp_path):
    marks = str(tmp_path)
    b = batch([]).then(MarkJob(marks, "then")).finally_(MarkJob(marks, "finally")).dispatch()
    work_off()
    assert JobBatch.objects.get(pk=b.pk).finished_at is not None
    assert len(marks_of(marks, "then")) == 2


def test_cancelled_batch_cancels_queued_members_and_runs_only_finally(tmp_path):
    marks = str(tmp_path)
    then, _catch, fin = _callbacks(marks)
    b = batch([MarkJob(marks, "m1"), MarkJob(marks, "m2")]).then(then).finally_(fin).dispatch()
    batch_cancel(batch=b)
    work_off()
    b.refresh_from_db()
    assert b.cancelled
    assert b.pending == 0
    assert set(JobRun.objects.filter(batch=b).values_list("status", flat=True)) == {
        Status.CANCELLED
    }
    assert marks_of(marks, "then") == []
    assert len(marks_of(marks, "finally")) == 2


def test_rate_limit_releases_over_limit_runs_without_spending_attempts(tmp_path):
    runs = [CarrierJob.dispatch(str(tmp_path), i) for i in range(12)]
    for run in runs:
        perform(run.pk, run.timeout)
    statuses = sorted(JobRun.objects.values_list("status", flat=True))
    assert statuses.count(Status.SUCCEEDED) == 10
    held = JobRun.objects.filter(status=Status.QUEUED)
    assert held.count() == 2
    assert all(r.attempts == 0 and r.available_at > timezone.now() for r in held)
    assert len(RateLimitWindow.objects.get(key="rate:test-carrier").starts) == 10


def test_rate_limit_window_slides(tmp_path):
    RateLimitWindow.objects.create(
        key="rate:test-carrier", starts=[timezone.now().timestamp() - 61] * 10
    )
    run = CarrierJob.dispatch(str(tmp_path))
    assert perform(run.pk, run.timeout) == Status.SUCCEEDED


def test_without_overlapping_releases_the_second_run_while_the_first_holds_the_lock(tmp_path):
    from aktina.jobs.models import JobLock

    first, second = ExclusiveJob.dispatch(str(tmp_path)), ExclusiveJob.dispatch(str(tmp_path))
    JobLock.objects.create(
        key="lock:exclusive", run=first, expires_at=timezone.now() + dt.timedelta(minutes=1)
    )
    assert perform(second.pk, second.timeout) == Status.QUEUED
    JobLock.objects.all().delete()
    work_off(include_delayed=True)
    assert JobRun.objects.filter(status=Status.SUCCEEDED).count() == 2
    assert JobLock.objects.count() == 0
