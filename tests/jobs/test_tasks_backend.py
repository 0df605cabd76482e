"""Django's Tasks API on the ledger, run inline through the worker's own code path."""

import datetime as dt
import os
import sys

import pytest
from asgiref.sync import async_to_sync
from django.db import transaction
from django.utils import timezone

from aktina.jobs import tasks_backend
from aktina.jobs.models import JobRun
from aktina.jobs.sweeper import runs_expire_leases
from aktina.jobs.tasks_api import (
    InvalidTask,
    TaskResultDoesNotExist,
    TaskResultStatus,
    default_task_backend,
    task,
    task_backends,
    task_enqueued,
    task_finished,
    task_started,
)
from aktina.jobs.tasks_backend import LedgerBackend
from aktina.jobs.testing import work_off
from aktina.jobs.worker import perform
from tests.jobs import sample_tasks
from tests.jobs.sample_jobs import NoopJob, marks_of

pytestmark = pytest.mark.django_db
Status = JobRun.Status


@pytest.fixture(autouse=True)
def _workers_import_the_sample_tasks(settings):
    # As the live tests' workers do (test_tasks_backend_live.py): tests/ is no installed app.
    settings.JOBS_IMPORT = [*settings.JOBS_IMPORT, "tests.jobs.sample_tasks"]


@pytest.fixture
def heard():
    """Every Tasks API signal sent, as (signal name, status, result id)."""
    events = []

    def listener(name):
        def receive(sender, task_result, **kwargs):
            assert issubclass(sender, LedgerBackend)
            events.append((name, task_result.status, task_result.id))

        return receive

    receivers = [
        (signal, listener(name))
        for signal, name in [
            (task_enqueued, "enqueued"),
            (task_started, "started"),
            (task_finished, "finished"),
        ]
    ]
    for signal, receive in receivers:
        signal.connect(receive)
    yield events
    for signal, receive in receivers:
        signal.disconnect(receive)


def test_every_feature_the_default_backend_claims_reaches_the_ledger():
    # Django refuses a priority, a run_after or a coroutine on a backend whose flag is False,
    # and get_result on one without supports_get_result: one enqueue through the default
    # backend uses all four, and the run must carry each value (a flag that lies, or a value
    # the backend drops, fails here).
    assert isinstance(task_backends["default"], LedgerBackend)
    when = timezone.now() + dt.timedelta(minutes=10)
    task = sample_tasks.async_add.using(priority=40, run_after=when)
    assert task.get_backend() is task_backends["default"]
    result = task.enqueue(2, 3)
    run = JobRun.objects.get(pk=int(result.id))
    assert run.priority == 40
    assert abs((run.available_at - when).total_seconds()) < 1
    got = task.get_result(result.id)
    assert (got.status, got.args) == (TaskResultStatus.READY, [2, 3])


def test_enqueue_writes_a_run_in_the_callers_transaction_and_signals_after_commit(
    heard, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        result = sample_tasks.add.enqueue(2, 3)
        assert heard == []  # nothing is announced before commit
    run = JobRun.objects.get(pk=int(result.id))
    assert run.job_name == "task:tests.jobs.sample_tasks.add"
    assert (run.status, run.queue, run.payload["args"]) == (Status.QUEUED, "default", [2, 3])
    assert result.status == TaskResultStatus.READY
    assert result.enqueued_at == run.created_at
    assert heard == [("enqueued", TaskResultStatus.READY, result.id)]


def test_enqueue_in_a_rolled_back_transaction_leaves_no_run_and_no_signal(
    heard, django_capture_on_commit_callbacks
):
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        sample_tasks.add.enqueue(1, 1)
        raise RuntimeError("caller failed")
    assert not JobRun.objects.exists()
    assert heard == []


def test_a_run_succeeds_and_get_result_reports_every_field(
    heard, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        result = sample_tasks.shout.enqueue("hi")
    with django_capture_on_commit_callbacks(execute=True):
        work_off()
    got = sample_tasks.shout.get_result(result.id)
    assert got.status == TaskResultStatus.SUCCESSFUL
    # A tuple comes back as the list JSON makes of it, from the run's own column.
    assert got.return_value == {"text": "HI", "parts": [1, 2]}
    assert JobRun.objects.get(pk=int(result.id)).return_value == got.return_value
    assert got.enqueued_at <= got.started_at == got.last_attempted_at <= got.finished_at
    assert len(got.worker_ids) == 1
    # host:pid:boot id
    assert got.worker_ids[0].split(":")[1] == str(os.getpid())
    assert got.errors == []
    assert got.task.queue_name == "urgent"
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert [e[:2] for e in heard] == [
        ("enqueued", TaskResultStatus.READY),
        ("started", TaskResultStatus.RUNNING),
        ("finished", TaskResultStatus.SUCCESSFUL),
    ]


def test_a_failure_keeps_the_exception_class_and_traceback(
    heard, django_capture_on_commit_callbacks
):
    result = sample_tasks.boom.enqueue("no such thing")
    with django_capture_on_commit_callbacks(execute=True):
        work_off()
    got = default_task_backend.get_result(result.id)
    assert got.status == TaskResultStatus.FAILED
    assert got.finished_at is not None
    [error] = got.errors
    assert error.exception_class is KeyError
    assert "Traceback (most recent call last)" in error.traceback
    assert "in boom" in error.traceback
    assert "no such thing" in error.traceback
    with pytest.raises(ValueError, match="failed"):
        got.return_value  # noqa: B018 - the API raises for a failed task
    assert ("finished", TaskResultStatus.FAILED, result.id) in heard
    assert JobRun.objects.get(pk=int(result.id)).status == Status.FAILED  # kept for operators


def test_tries_from_the_decorator_retry_and_the_context_counts_attempts(tmp_path):
    result = sample_tasks.flaky.enqueue(str(tmp_path), 2)
    run = JobRun.objects.get(pk=int(result.id))
    assert (run.tries, run.timeout, run.backoff) == (3, 30, [0.0])
    work_off()
    got = result.task.get_result(result.id)
    assert got.status == TaskResultStatus.SUCCESSFUL
    assert [line[2] for line in marks_of(tmp_path, "flaky")] == [
        "attempt=1",
        "attempt=2",
        "attempt=3",
    ]
    assert got.return_value == {"attempt": 3, "result_id": result.id}
    assert [e.exception_class for e in got.errors] == [ValueError, ValueError]
    assert got.attempts == 3
    assert len(got.worker_ids) == 3
    assert got.started_at < got.last_attempted_at  # the first attempt's start is kept


def test_options_give_the_defaults_for_tasks_that_pass_none(settings):
    settings.TASKS = {
        "default": {
            "BACKEND": "aktina.jobs.tasks_backend.LedgerBackend",
            "OPTIONS": {"TRIES": 4, "BACKOFF": [5, 10], "TIMEOUT": 90},
        }
    }
    result = sample_tasks.add.enqueue(1, 2)
    run = JobRun.objects.get(pk=int(result.id))
    assert (run.tries, run.backoff, run.timeout) == (4, [5.0, 10.0], 90)


def test_a_permanent_error_fails_at_once_whatever_the_tries():
    result = sample_tasks.refuses.enqueue("give up")
    work_off(include_delayed=True)
    got = result.task.get_result(result.id)
    assert got.status == TaskResultStatus.FAILED
    assert len(got.errors) == 1
    assert got.attempts == 1


def test_a_return_value_json_cannot_hold_fails_the_run():
    result = sample_tasks.returns_a_set.enqueue()
    work_off()
    got = result.task.get_result(result.id)
    assert got.status == TaskResultStatus.FAILED
    assert got.errors[0].exception_class is TypeError
    assert JobRun.objects.get(pk=int(result.id)).return_value is None


def test_arguments_json_cannot_hold_are_refused_at_enqueue():
    with pytest.raises(InvalidTask, match="JSON"):
        sample_tasks.add.enqueue(dt.date(2026, 1, 1), 1)
    with pytest.raises(InvalidTask, match="JSON"):
        sample_tasks.add.enqueue({1: "int key"}, 1)
    assert not JobRun.objects.exists()


def test_unknown_queues_are_invalid_at_definition_and_at_enqueue():
    with pytest.raises(InvalidTask, match="nowhere"):
        task(queue_name="nowhere")(sample_tasks.add.func)
    with pytest.raises(InvalidTask, match="nowhere"):
        sample_tasks.add.using(queue_name="nowhere").enqueue(1, 2)
    assert not JobRun.objects.exists()


def test_run_after_becomes_available_at_and_the_run_waits_for_it():
    when = timezone.now() + dt.timedelta(hours=1)
    result = sample_tasks.add.using(run_after=when).enqueue(1, 2)
    run = JobRun.objects.get(pk=int(result.id))
    assert abs((run.available_at - when).total_seconds()) < 1
    assert work_off() == 0
    assert result.task.get_result(result.id).status == TaskResultStatus.READY


def test_priority_orders_delivery_within_a_queue():
    from aktina.jobs.testing import claimable

    low = sample_tasks.add.using(priority=-10).enqueue(1, 2)
    high = sample_tasks.add.using(priority=50).enqueue(3, 4)
    plain = sample_tasks.add.enqueue(5, 6)
    queue = sample_tasks.add.queue_name
    delivered = [run_id for run_id, _ in claimable(queues=[queue], limit=3)]
    assert delivered == [int(high.id), int(plain.id), int(low.id)]


def test_get_result_of_unknown_ids_and_of_job_runs_does_not_exist():
    job_run = NoopJob.dispatch()
    for result_id in ["999999", "not-a-number", str(job_run.pk)]:
        with pytest.raises(TaskResultDoesNotExist):
            default_task_backend.get_result(result_id)


def test_aget_result_reads_the_same_run():
    result = sample_tasks.add.enqueue(20, 22)
    work_off()
    got = async_to_sync(sample_tasks.add.aget_result)(result.id)
    assert (got.status, got.return_value) == (TaskResultStatus.SUCCESSFUL, 42)


def test_async_task_functions_run_in_the_worker():
    result = sample_tasks.async_add.enqueue(1, 2)
    work_off()
    assert sample_tasks.async_add.get_result(result.id).return_value == 3


@pytest.mark.parametrize(
    "job_name",
    [
        "task:os.system",
        "task:tests.jobs.sample_jobs.mark",  # a module-level function, but not a Task
        "task:aktina.jobs.tasks_api.task",  # the decorator itself
        "task:tests.jobs.sample_tasks.nothing_here",
    ],
)
def test_a_tampered_task_name_runs_nothing(job_name, tmp_path):
    result = sample_tasks.add.enqueue(1, 2)
    JobRun.objects.filter(pk=int(result.id)).update(job_name=job_name)
    perform(int(result.id), 10)
    run = JobRun.objects.get(pk=int(result.id))
    assert run.status == Status.FAILED
    assert "not a registered @task function" in run.last_error
    assert run.return_value is None


def test_a_lease_that_expires_on_the_last_try_fails_the_task_and_says_so(
    heard, django_capture_on_commit_callbacks
):
    result = sample_tasks.add.enqueue(1, 2)
    run = JobRun.objects.get(pk=int(result.id))
    # A worker claimed it and died: running, its lease over, its only try spent.
    JobRun.objects.filter(pk=run.pk).update(
        status=Status.RUNNING,
        attempts=1,
        started_at=timezone.now(),
        worker="gone:1",
        lease_expires_at=timezone.now(),
    )
    with django_capture_on_commit_callbacks(execute=True):
        runs_expire_leases()
    got = default_task_backend.get_result(result.id)
    assert got.status == TaskResultStatus.FAILED
    assert got.errors[0].exception_class_path == "aktina.jobs.exceptions.JobTimedOut"
    assert got.worker_ids == ["gone:1"]
    # The sweeper only marks the run; its failed hooks and listeners run in a worker, as a job.
    assert heard == []
    with django_capture_on_commit_callbacks(execute=True):
        work_off()
    assert ("finished", TaskResultStatus.FAILED, result.id) in heard


def test_a_task_no_worker_could_import_is_refused_at_enqueue():
    # What `manage.py shell` does with a definition typed into it: a module-level function of
    # the shell command's namespace, which no worker can import. Enqueued, it would fail on
    # every worker with "not a registered @task function".
    namespace = {"__name__": "django.core.management.commands.shell", "task": task}
    exec(  # a fixed definition, the way the shell evaluates one
        "@task(queue_name='default')\ndef send_digest(customer_id):\n    return customer_id\n",
        namespace,
    )
    with pytest.raises(InvalidTask, match="where a worker cannot import it"):
        namespace["send_digest"].enqueue(42)
    assert not JobRun.objects.exists()


OUTSIDE_TASKS = """
from aktina.jobs.tasks_api import task


@task
def outside_echo(value):
    return value
"""


@pytest.fixture
def outside_module(tmp_path, monkeypatch):
    """A module importable here (as in `manage.py shell` or a script), in no installed app."""
    (tmp_path / "aktina_outside_tasks.py").write_text(OUTSIDE_TASKS)
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    module = importlib.import_module("aktina_outside_tasks")
    yield module
    sys.modules.pop("aktina_outside_tasks", None)
    tasks_backend._tasks.pop("aktina_outside_tasks.outside_echo", None)


def test_a_task_outside_every_app_and_jobs_import_is_refused_at_enqueue(outside_module):
    # Importable in this process, but a worker imports only installed apps' modules and
    # JOBS_IMPORT: enqueued, it would fail on every worker with TaskNotRegistered.
    with pytest.raises(InvalidTask, match="where a worker cannot import it"):
        outside_module.outside_echo.enqueue(1)
    assert not JobRun.objects.exists()


def test_enqueue_accepts_what_a_worker_runs_and_the_worker_refuses_what_enqueue_refuses(
    outside_module, settings
):
    settings.JOBS_IMPORT = [*settings.JOBS_IMPORT, "aktina_outside_tasks"]
    result = outside_module.outside_echo.enqueue(5)
    work_off()
    assert outside_module.outside_echo.get_result(result.id).return_value == 5
    # The same run once the module is no longer one a worker imports: the worker refuses it,
    # although this process has the function in memory.
    settings.JOBS_IMPORT = [m for m in settings.JOBS_IMPORT if m != "aktina_outside_tasks"]
    second = JobRun.objects.get(pk=int(result.id))
    JobRun.objects.filter(pk=second.pk).update(status=Status.QUEUED, finished_at=None)
    perform(second.pk, 10)
    second.refresh_from_db()
    assert second.status == Status.FAILED
    assert "not a registered @task function" in second.last_error


def test_the_shipped_health_probe_task_reports_through_a_worker(django_capture_on_commit_callbacks):
    from aktina.core.tasks import health_probe

    with django_capture_on_commit_callbacks(execute=True):
        result = health_probe.enqueue()
        work_off()
    got = health_probe.get_result(result.id)
    assert got.status == TaskResultStatus.SUCCESSFUL
    assert got.return_value["status"] == "ok"
    assert got.return_value["database"]["ok"] is True
