"""The ledger's rules, run inline through the worker's own code path (claim, execute, record)."""

import datetime as dt

import pytest
from django.db import transaction
from django.utils import timezone

from aktina.jobs import chain, job_dispatched, job_failed, job_succeeded
from aktina.jobs.jobs import RunFailedHooksJob
from aktina.jobs.lifecycle import RunNotChangeable, run_cancel
from aktina.jobs.models import JobAttempt, JobRun
from aktina.jobs.retrying import run_retry
from aktina.jobs.sweeper import runs_expire_leases, runs_prune
from aktina.jobs.testing import claimable, work_off
from aktina.jobs.worker import perform
from tests.conftest import IS_POSTGRES
from tests.factories import ProductFactory
from tests.jobs.sample_jobs import (
    BrokenJob,
    FlakyJob,
    MarkJob,
    NoopJob,
    SlowJob,
    UniqueJob,
    marks_of,
)

pytestmark = pytest.mark.django_db
Status = JobRun.Status


def test_dispatch_is_one_insert_and_the_run_is_due_for_the_broker_at_once(
    django_assert_num_queries,
):
    # On PostgreSQL a transaction's first dispatch also sends its one NOTIFY (wakes clusters).
    with django_assert_num_queries(2 if IS_POSTGRES else 1):
        first = NoopJob.dispatch(6)
    with django_assert_num_queries(1):
        run = NoopJob.dispatch(7)
    run.refresh_from_db()
    assert (run.status, run.queue, run.payload) == (
        Status.QUEUED,
        "default",
        {"args": [7], "kwargs": {}},
    )
    assert claimable(queues=["default"], limit=10) == [
        (first.pk, first.timeout),
        (run.pk, run.timeout),
    ]


def test_rolled_back_dispatch_leaves_no_run(django_capture_on_commit_callbacks):
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        NoopJob.dispatch(1)
        raise RuntimeError("caller failed")
    assert JobRun.objects.count() == 0
    assert claimable(queues=["default"], limit=10) == []


def test_model_arguments_are_stored_as_references_and_fetched_fresh():
    product = ProductFactory(name="before")
    run = NoopJob.dispatch(product)
    assert run.payload["args"] == [{"__model__": "orders.product", "pk": product.pk}]
    product.name = "after"
    product.save()
    from aktina.jobs.worker import job_for_run

    assert job_for_run(run).n.name == "after"


def test_unknown_argument_types_are_refused_at_dispatch():
    with pytest.raises(TypeError, match="data or model instances"):
        NoopJob.dispatch(object())


def test_unknown_queue_is_refused_at_dispatch():
    with pytest.raises(ValueError, match="Unknown queue"):
        NoopJob(1).on_queue("nope").dispatch()


def test_temporary_errors_retry_with_the_backoff_sequence_then_succeed(tmp_path):
    run = FlakyJob.dispatch(str(tmp_path), 2)
    perform(run.pk, run.timeout)
    run.refresh_from_db()
    assert run.status == Status.QUEUED
    assert run.attempts == 1
    delay = (run.available_at - timezone.now()).total_seconds()
    assert 0.8 <= delay <= 1.2  # backoff[0] = 1 s, ±10 % jitter
    work_off(include_delayed=True)
    run.refresh_from_db()
    assert run.status == Status.SUCCEEDED
    assert run.attempts == 3
    assert [a.outcome for a in run.attempt_log.all()] == ["error", "error"]
    assert "flaky failure on attempt 2" in run.attempt_log.last().traceback


def test_backoff_last_value_repeats():
    from aktina.jobs.lifecycle import backoff_seconds

    run = JobRun(backoff=[10, 20])
    assert [round(backoff_seconds(run, a) / 10) * 10 for a in (1, 2, 3, 4)] == [10, 20, 20, 20]


def test_tries_exhausted_fails_once_and_calls_failed_hook_once(
    tmp_path, django_capture_on_commit_callbacks
):
    run = FlakyJob.dispatch(str(tmp_path), 99)
    failures = []

    def on_failed(sender, run, **kw):
        failures.append(run.pk)

    job_failed.connect(on_failed)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            work_off(include_delayed=True)
    finally:
        job_failed.disconnect(on_failed)
    run.refresh_from_db()
    assert run.status == Status.FAILED
    assert run.attempts == 4
    assert len(marks_of(tmp_path, "flaky-failed")) == 1
    assert failures == [run.pk]
    assert run.attempt_log.filter(outcome=JobAttempt.Outcome.FAILED).count() == 1


def test_permanent_error_fails_at_once_without_retry(tmp_path):
    run = BrokenJob.dispatch(str(tmp_path))
    work_off(include_delayed=True)
    run.refresh_from_db()
    assert (run.status, run.attempts) == (Status.FAILED, 1)
    assert "PermanentError: the order is malformed" in run.last_error
    assert len(marks_of(tmp_path, "broken-failed")) == 1


def test_deadline_cuts_retries_short(tmp_path):
    run = FlakyJob.dispatch(str(tmp_path), 99)
    JobRun.objects.filter(pk=run.pk).update(retry_until=timezone.now() - dt.timedelta(seconds=1))
    work_off(include_delayed=True)
    run.refresh_from_db()
    assert (run.status, run.attempts) == (Status.FAILED, 1)


def test_release_puts_run_back_without_spending_an_attempt():
    from aktina.jobs import Job

    class ReleasingJob(Job):
        def handle(self):
            if self.attempt == 1 and not self.run.last_error:
                self.release(30)

    run = ReleasingJob.dispatch()
    perform(run.pk, run.timeout)
    run.refresh_from_db()
    assert run.status == Status.QUEUED
    assert run.attempts == 0
    assert run.available_at > timezone.now() + dt.timedelta(seconds=25)


def test_a_duplicate_delivery_of_a_running_run_does_nothing(tmp_path):
    run = MarkJob.dispatch(str(tmp_path), "dup")
    JobRun.objects.filter(pk=run.pk).update(status=Status.RUNNING, attempts=1)
    assert perform(run.pk, run.timeout) == "skipped"
    assert marks_of(tmp_path, "dup") == []


def test_delayed_run_is_not_claimed_before_it_is_due(tmp_path):
    run = MarkJob(str(tmp_path), "later").delay(dt.timedelta(minutes=5)).dispatch()
    assert perform(run.pk, run.timeout) == "skipped"
    assert claimable(queues=["default"], limit=10) == []
    JobRun.objects.filter(pk=run.pk).update(available_at=timezone.now())
    assert claimable(queues=["default"], limit=10) == [(run.pk, run.timeout)]
    assert perform(run.pk, run.timeout) == Status.SUCCEEDED


def test_expired_lease_counts_an_attempt_then_fails_after_tries(tmp_path):
    run = SlowJob.dispatch(str(tmp_path), 0)
    for attempt in (1, 2):
        JobRun.objects.filter(pk=run.pk).update(
            status=Status.RUNNING,
            attempts=attempt,
            available_at=timezone.now(),
            lease_expires_at=timezone.now() - dt.timedelta(seconds=1),
        )
        assert runs_expire_leases() == 1
    run.refresh_from_db()
    assert (run.status, run.attempts) == (Status.FAILED, 2)
    assert [a.outcome for a in run.attempt_log.all()] == ["timed_out", "timed_out"]
    # The sweeper (or the sentinel) only wrote rows; failed() runs for a lost worker too, but
    # in a worker, as a job.
    assert marks_of(tmp_path, "slow-failed") == []
    hooks = JobRun.objects.get(job_name=RunFailedHooksJob.job_name)
    assert (hooks.queue, hooks.payload["args"]) == (run.queue, [run.pk])
    work_off()
    assert len(marks_of(tmp_path, "slow-failed")) == 1


def test_unique_dispatch_returns_the_active_run_until_it_ends():
    first = UniqueJob.dispatch("a")
    again = UniqueJob.dispatch("a")
    assert again.pk == first.pk
    assert UniqueJob.dispatch("b").pk != first.pk
    work_off()
    assert UniqueJob.dispatch("a").pk != first.pk  # released on success


def test_unique_key_blocks_at_most_unique_for():
    first = UniqueJob.dispatch("stuck")
    JobRun.objects.filter(pk=first.pk).update(unique_until=timezone.now())
    assert UniqueJob.dispatch("stuck").pk != first.pk


def test_unique_until_processing_releases_the_key_at_start():
    from aktina.jobs import Job

    class Seen:
        run_ids = []

    class StartUnique(Job):
        unique_until_processing = True

        def unique_id(self):
            return "start-unique"

        def handle(self):
            Seen.run_ids.append(StartUnique.dispatch().pk)

    first = StartUnique.dispatch()
    perform(first.pk, first.timeout)
    assert Seen.run_ids
    assert Seen.run_ids[0] != first.pk


def test_chain_runs_links_in_order_and_stops_at_a_failure_with_catch_once(tmp_path):
    marks = str(tmp_path)
    chain(MarkJob(marks, "one"), BrokenJob(marks), MarkJob(marks, "never")).catch(
        MarkJob(marks, "caught")
    ).dispatch()
    work_off(include_delayed=True)
    assert len(marks_of(marks, "one")) == 2  # start + end
    assert marks_of(marks, "never") == []
    assert len(marks_of(marks, "caught")) == 2
    assert JobRun.objects.filter(status=Status.FAILED).count() == 1


def test_chain_dispatches_the_next_link_only_after_success(tmp_path):
    marks = str(tmp_path)
    first = chain(MarkJob(marks, "a"), MarkJob(marks, "b")).dispatch()
    assert JobRun.objects.count() == 1
    perform(first.pk, first.timeout)
    assert JobRun.objects.count() == 2
    work_off()
    assert [m[2] for m in marks_of(marks, "b")] == ["start attempt=1", "end"]


def test_signals_fire_for_dispatch_success_and_failure(
    tmp_path, django_capture_on_commit_callbacks
):
    seen = []
    handlers = [
        (job_dispatched, lambda sender, run, **kw: seen.append(("dispatched", run.pk))),
        (job_succeeded, lambda sender, run, **kw: seen.append(("succeeded", run.pk))),
        (job_failed, lambda sender, run, **kw: seen.append(("failed", run.pk))),
    ]
    for signal, handler in handlers:
        signal.connect(handler, weak=False)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            ok = NoopJob.dispatch()
            bad = BrokenJob.dispatch(str(tmp_path))
        with django_capture_on_commit_callbacks(execute=True):
            work_off()
    finally:
        for signal, handler in handlers:
            signal.disconnect(handler)
    assert ("dispatched", ok.pk) in seen
    assert ("dispatched", bad.pk) in seen
    assert ("succeeded", ok.pk) in seen
    assert ("failed", bad.pk) in seen


def test_operator_retry_gives_fresh_tries_and_keeps_history(tmp_path):
    run = BrokenJob.dispatch(str(tmp_path))
    work_off()
    again = run_retry(run=JobRun.objects.get(pk=run.pk))
    run.refresh_from_db()
    assert (again.status, again.attempts, again.retry_of_id) == (Status.QUEUED, 0, run.pk)
    assert (run.status, run.attempt_log.count()) == (Status.RETRIED, 1)
    with pytest.raises(RunNotChangeable, match="already retried"):
        run_retry(run=run)


def test_cancel_only_applies_to_queued_runs():
    run = NoopJob.dispatch()
    run_cancel(run=run)
    run.refresh_from_db()
    assert run.status == Status.CANCELLED
    with pytest.raises(RunNotChangeable, match="only queued"):
        run_cancel(run=run)


def test_prune_deletes_old_succeeded_runs_and_keeps_failed_ones(tmp_path, settings):
    ok, bad = NoopJob.dispatch(), BrokenJob.dispatch(str(tmp_path))
    work_off()
    old = timezone.now() - settings.JOBS_RETENTION - dt.timedelta(hours=1)
    JobRun.objects.update(finished_at=old)
    assert runs_prune() == 1
    assert list(JobRun.objects.values_list("pk", flat=True)) == [bad.pk]
    assert ok.pk not in JobRun.objects.values_list("pk", flat=True)


def test_tampered_job_name_is_not_imported_or_called(tmp_path):
    run = NoopJob.dispatch()
    JobRun.objects.filter(pk=run.pk).update(job_name="os.system", payload={"args": ["touch x"]})
    perform(run.pk, 10)
    run.refresh_from_db()
    assert run.status == Status.FAILED
    assert "not a registered job class" in run.last_error


def test_tampered_payload_cannot_reach_unregistered_models():
    run = NoopJob.dispatch()
    JobRun.objects.filter(pk=run.pk).update(
        payload={"args": [{"__model__": "nope.model", "pk": 1}], "kwargs": {}}
    )
    perform(run.pk, 10)
    run.refresh_from_db()
    assert run.status == Status.FAILED
    assert "Unknown model" in run.last_error


def test_deleted_model_argument_fails_the_run_with_a_clear_reason():
    product = ProductFactory()
    run = NoopJob.dispatch(product)
    product.delete()
    perform(run.pk, 10)
    run.refresh_from_db()
    assert run.status == Status.FAILED
    assert "no longer exists" in run.last_error
