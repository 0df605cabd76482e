"""Django's Tasks API (`@task`) on the job ledger: the second front door to the same runs.

A `@task` function's `enqueue()` writes a `JobRun` (job name `task:<module path>`) in the
caller's transaction, exactly like `Job.dispatch()`; the same workers claim it with the same
lease, the sweeper expires it, retries follow its tries and backoff, and a failed run stays in
the ledger for operators. The TaskResult is read back from the run and its attempt log.

Mapping (README, "Django's Tasks API"):
- queue_name: one of JOBS_QUEUES (or the backend's QUEUES); anything else is InvalidTask when the
  task is defined or re-targeted with `using()`, and again at enqueue.
- run_after: the run's `available_at`.
- priority (-100..100): the run's `priority` column; the broker delivers a queue's due runs
  higher priority first, then oldest `available_at`.
- status: queued -> READY (also between retries), running -> RUNNING, succeeded -> SUCCESSFUL,
  failed, cancelled and retried -> FAILED (the API has neither state).
- tries / backoff / timeout: `@task(tries=3, backoff=[10, 60], timeout=120)` or the backend's
  OPTIONS (TRIES, BACKOFF, TIMEOUT); defaults 1 try, no backoff, 60 s, as for a Job.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
from importlib import import_module
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core import checks
from django.db import transaction
from django.dispatch import receiver
from django.utils import timezone

from aktina.jobs.dispatching import run_dispatch
from aktina.jobs.exceptions import PermanentError
from aktina.jobs.lifecycle import run_error, run_fail, run_succeed
from aktina.jobs.models import JobAttempt, JobRun
from aktina.jobs.signals import job_dispatched, job_failed, job_started, job_succeeded
from aktina.jobs.spec import DispatchSpec
from aktina.jobs.tasks_api import (
    BaseTaskBackend,
    InvalidTask,
    Task,
    TaskContext,
    TaskError,
    TaskResult,
    TaskResultDoesNotExist,
    TaskResultStatus,
    task_enqueued,
    task_finished,
    task_started,
)

TASK_PREFIX = "task:"
Status = JobRun.Status

STATUS_MAP = {
    Status.QUEUED: TaskResultStatus.READY,
    Status.RUNNING: TaskResultStatus.RUNNING,
    Status.SUCCEEDED: TaskResultStatus.SUCCESSFUL,
    Status.FAILED: TaskResultStatus.FAILED,
    Status.CANCELLED: TaskResultStatus.FAILED,
    Status.RETRIED: TaskResultStatus.FAILED,
}

# Every Task built for a ledger backend, by module path. A worker runs only what is in here:
# a run's job name is data, and importing or calling whatever it names would run any code.
_tasks: dict[str, Task] = {}


class TaskNotRegistered(LookupError):
    """A task run names no `@task` function of a ledger backend (tampered or stale row)."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class LedgerTask(Task):
    """A Task with the ledger's retry options; `@task(tries=..., backoff=..., timeout=...)`."""

    tries: int | None = None
    backoff: float | list[float] | None = None
    timeout: int | None = None


class LedgerBackend(BaseTaskBackend):
    task_class = LedgerTask
    supports_defer = True
    supports_get_result = True
    # Coroutine functions run in the worker through async_to_sync.
    supports_async_task = True

    def __init__(self, alias: str, params: dict) -> None:
        super().__init__(alias, params)
        if "QUEUES" not in params:
            self.queues = set(settings.JOBS_QUEUES)
        options = {k.upper(): v for k, v in self.options.items()}
        self.default_tries = int(options.get("TRIES", 1))
        self.default_backoff = options.get("BACKOFF", 0)
        self.default_timeout = int(options.get("TIMEOUT", 60))

    # The broker delivers a queue's due runs by `priority` (higher first), then `available_at`.
    supports_priority = True

    def validate_task(self, task: Task) -> None:
        super().validate_task(task)
        if task.queue_name not in settings.JOBS_QUEUES:
            raise InvalidTask(f"Queue {task.queue_name!r} is not one of JOBS_QUEUES.")
        options = _ledger_options(task)
        if options["tries"] is not None and int(options["tries"]) < 1:
            raise InvalidTask("tries must be at least 1.")
        if options["timeout"] is not None and int(options["timeout"]) < 1:
            raise InvalidTask("timeout must be at least 1 second.")
        _tasks.setdefault(task.module_path, task)

    def enqueue(self, task: Task, args, kwargs) -> TaskResult:
        self.validate_task(task)
        _require_importable(task)
        args, kwargs = _json_arguments(args, kwargs)
        options = _ledger_options(task)
        backoff = options["backoff"] if options["backoff"] is not None else self.default_backoff
        spec = DispatchSpec(
            job=TASK_PREFIX + task.module_path,
            queue=task.queue_name,
            payload={"args": args, "kwargs": kwargs, "backend": self.alias},
            tries=int(options["tries"] or self.default_tries),
            timeout=int(options["timeout"] or self.default_timeout),
            backoff=tuple(float(b) for b in (backoff if isinstance(backoff, list) else [backoff])),
            delay=_seconds_until(task.run_after),
            priority=int(task.priority or 0),
        )
        run = run_dispatch(spec=spec)
        return task_result_from_run(run=run, task=task, attempts=[])

    def get_result(self, result_id: str) -> TaskResult:
        try:
            run = JobRun.objects.get(pk=int(result_id), job_name__startswith=TASK_PREFIX)
        except (ValueError, TypeError, JobRun.DoesNotExist) as exc:
            raise TaskResultDoesNotExist(result_id) from exc
        return task_result_from_run(run=run)

    def check(self, **kwargs: Any):
        unknown = self.queues - set(settings.JOBS_QUEUES)
        if unknown:
            yield checks.Error(
                f"TASKS[{self.alias!r}]['QUEUES'] names queues that are not in JOBS_QUEUES: "
                f"{', '.join(sorted(unknown))}",
                id="aktina.jobs.E001",
            )


def _require_importable(task: Task) -> None:
    """Refuse at enqueue what every worker would refuse (TaskNotRegistered): a task whose
    module a worker does not import (`task_module_served`), or that is not found under its
    name there. Checked at enqueue, not definition: while its module is being imported the
    function is not yet an attribute of it."""
    module_name, _, name = task.module_path.rpartition(".")
    found = None
    if task_module_served(module_name):
        with contextlib.suppress(ImportError, AttributeError):
            found = getattr(import_module(module_name), name)
    if getattr(found, "module_path", None) != task.module_path:
        raise InvalidTask(
            f"{name} is defined in {module_name}, where a worker cannot import it: define "
            "@task functions in an installed app's module (its tasks.py) or list their module "
            "in JOBS_IMPORT."
        )


def task_module_served(module: str) -> bool:
    """Whether workers look for tasks in `module`: a module of an installed app (imported on
    demand) or one listed in JOBS_IMPORT (imported at start). The one rule for enqueue and
    worker alike."""
    if module in settings.JOBS_IMPORT:
        return True
    return any(module == a.name or module.startswith(a.name + ".") for a in apps.get_app_configs())


def is_task_run(run: JobRun) -> bool:
    return run.job_name.startswith(TASK_PREFIX)


def task_for_run(run: JobRun) -> Task:
    """The registered Task a run names; importing only modules workers serve to find it."""
    path = run.job_name.removeprefix(TASK_PREFIX)
    module = path.rpartition(".")[0]
    if not task_module_served(module):
        raise TaskNotRegistered(f"{path!r} is not a registered @task function.")
    task = _tasks.get(path)
    if task is None:
        with contextlib.suppress(ImportError):
            import_module(module)
        task = _tasks.get(path)
    if task is None or not isinstance(task, Task):
        raise TaskNotRegistered(f"{path!r} is not a registered @task function.")
    return task


def task_result_from_run(
    *, run: JobRun, task: Task | None = None, attempts: list[JobAttempt] | None = None
) -> TaskResult:
    """The TaskResult of a run: its times, per-attempt errors and workers, and return value."""
    task = task or task_for_run(run)
    if attempts is None:
        attempts = list(run.attempt_log.order_by("id"))
    workers = [a.worker for a in attempts]
    # The attempt in progress, or the one that succeeded, has no attempt-log row.
    if len(workers) < run.attempts and run.status in (Status.RUNNING, Status.SUCCEEDED):
        workers.append(run.worker)
    payload = run.payload if isinstance(run.payload, dict) else {}
    result = TaskResult(
        task=task,
        id=str(run.pk),
        status=STATUS_MAP[run.status],
        enqueued_at=run.created_at,
        started_at=attempts[0].started_at if attempts else run.started_at,
        last_attempted_at=run.started_at,
        finished_at=run.finished_at,
        args=payload.get("args", []),
        kwargs=payload.get("kwargs", {}),
        backend=payload.get("backend", task.backend),
        errors=[
            TaskError(
                exception_class_path=a.error_class or "builtins.Exception",
                traceback=a.traceback or a.error,
            )
            for a in attempts
        ],
        worker_ids=workers,
    )
    object.__setattr__(result, "_return_value", run.return_value)
    return result


def task_run_execute(run: JobRun) -> str:
    """Run one claimed attempt of a task run (called by the worker); returns the new status."""
    try:
        task = task_for_run(run)
        args, kwargs = run.payload["args"], run.payload["kwargs"]
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            raise TypeError("a task run's payload must hold an args list and a kwargs dict")
    except Exception as exc:  # noqa: BLE001 - a run that names no task can never succeed
        return run_fail(run=run, job=None, exc=exc, outcome=JobAttempt.Outcome.FAILED)
    try:
        if task.takes_context:
            context = TaskContext(task_result=task_result_from_run(run=run, task=task))
            value = task.call(context, *args, **kwargs)
        else:
            value = task.call(*args, **kwargs)
    except PermanentError as exc:
        return run_error(run=run, job=None, exc=exc, permanent=True)
    except Exception as exc:  # noqa: BLE001 - any other error is a temporary one, as for jobs
        return run_error(run=run, job=None, exc=exc, permanent=False)
    try:
        value = _json_round_trip(value)
    except (TypeError, ValueError) as exc:
        # Returning the same value again would fail the same way: no retry.
        return run_error(run=run, job=None, exc=exc, permanent=True)
    with transaction.atomic():
        # Pinned to this attempt, like _finish: a run the sweeper took back is not ours.
        JobRun.objects.filter(pk=run.pk, status=Status.RUNNING, attempts=run.attempts).update(
            return_value=value
        )
        if not run_succeed(run=run):
            return run.status
    run.return_value = value
    return Status.SUCCEEDED


# --- the Tasks API's signals, sent from the ledger's (all after commit) ---------------------
def _send(signal, run: JobRun) -> None:
    if not is_task_run(run):
        return
    try:
        result = task_result_from_run(run=run)
    except TaskNotRegistered:
        return  # a tampered run: there is no task to report on
    signal.send(sender=type(result.task.get_backend()), task_result=result)


@receiver(job_dispatched, dispatch_uid="aktina-tasks-enqueued")
def _on_dispatched(sender, run: JobRun, **kwargs) -> None:
    _send(task_enqueued, run)


@receiver(job_started, dispatch_uid="aktina-tasks-started")
def _on_started(sender, run: JobRun, **kwargs) -> None:
    _send(task_started, run)


@receiver(job_succeeded, dispatch_uid="aktina-tasks-succeeded")
def _on_succeeded(sender, run: JobRun, **kwargs) -> None:
    _send(task_finished, _refreshed(run))


@receiver(job_failed, dispatch_uid="aktina-tasks-failed")
def _on_failed(sender, run: JobRun, **kwargs) -> None:
    _send(task_finished, _refreshed(run))


def _refreshed(run: JobRun) -> JobRun:
    # The signal's run object carries the status; the return value was written beside it.
    if is_task_run(run):
        run.refresh_from_db()
    return run


# --- helpers --------------------------------------------------------------------------------
def _ledger_options(task: Task) -> dict:
    return {name: getattr(task, name, None) for name in ("tries", "backoff", "timeout")}


def _json_arguments(args, kwargs) -> tuple[list, dict]:
    try:
        return _json_round_trip(list(args)), _json_round_trip(dict(kwargs))
    except (TypeError, ValueError) as exc:
        raise InvalidTask(f"Task arguments must be JSON data: {exc}") from exc


def _json_round_trip(value: Any) -> Any:
    """The value as it will read back from the ledger; refuses what would not survive."""
    loaded = json.loads(json.dumps(value, allow_nan=False))
    if loaded != _tuples_as_lists(value):
        raise ValueError("the value does not survive a JSON round trip (non-string dict keys?)")
    return loaded


def _tuples_as_lists(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_tuples_as_lists(v) for v in value]
    if isinstance(value, dict):
        return {k: _tuples_as_lists(v) for k, v in value.items()}
    return value


def _seconds_until(when: dt.datetime | None) -> float:
    if when is None:
        return 0.0
    return max(0.0, (when - timezone.now()).total_seconds())
