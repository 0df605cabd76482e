"""django-q2's own tasks (`async_task`, schedules) as ledger runs.

The run stores django-q2's signed task package unchanged. A worker runs it only after the
signature checks out (HMAC with SECRET_KEY, django-q2's own rule for its broker messages), so a
row written by anyone without the key cannot name a function for a worker to import: the tamper
rule of the ledger (workers run registered job classes only) holds, with `DjangoQTask` as the
registered class and the signature standing in for the registry.

The run also stores the function's dotted path in `JobRun.task_function` (set in the dispatching
transaction), so that operators see, search and count `math.sqrt` rather than `DjangoQTask`;
`raw_task_describe` decodes the arguments for the run page, redacted like other payloads.
"""

from __future__ import annotations

import pydoc
from typing import Any

from django.conf import settings
from django.core.signing import BadSignature
from django.db import transaction
from django_q.conf import Conf
from django_q.signing import SignedPackage

from aktina.core.redaction import redact
from aktina.jobs.exceptions import PermanentError
from aktina.jobs.job import Job
from aktina.jobs.models import JobRun


class DjangoQTask(Job):
    """A raw django-q2 task package; `handle` calls its function."""

    # Whoever schedules raw tasks (the sweeper, analytics refreshes) hears of failures as for
    # any job; one attempt, as django-q2 gives them with `ack_failures`.
    tries = 1

    def __init__(self, package: str):
        self.package = package

    def handle(self) -> None:
        try:
            task = SignedPackage.loads(self.package)
        except (BadSignature, TypeError, ValueError) as exc:
            raise PermanentError(f"django-q2 task package refused: {exc}") from exc
        func = task["func"]
        if isinstance(func, str):
            func = pydoc.locate(func)
        if not callable(func):
            raise PermanentError(f"django-q2 task function {task['func']!r} is not defined")
        func(*task.get("args", ()), **task.get("kwargs", {}))


def raw_task_dispatch(*, package: str, cluster: str):
    """Write the run of a django-q2 task package sent to `cluster`'s broker."""
    from aktina.jobs.dispatching import run_dispatch

    task = SignedPackage.loads(package)
    queue = cluster if cluster in settings.JOBS_DEDICATED_QUEUES else "default"
    job = DjangoQTask(package).on_queue(queue)
    spec = job.to_spec().replace(timeout=int(task.get("timeout") or Conf.TIMEOUT or job.timeout))
    function = function_path(task.get("func"))
    with transaction.atomic():
        run = run_dispatch(spec=spec)
        # Its own UPDATE in the same transaction: the run commits with its function or not at all.
        JobRun.objects.filter(pk=run.pk).update(task_function=function)
    run.task_function = function
    return run


def function_path(func: Any) -> str:
    """`math.sqrt` for a path or a function; a callable without a module path as its repr."""
    if isinstance(func, str):
        return func[:200]
    module, name = getattr(func, "__module__", None), getattr(func, "__qualname__", None)
    return (f"{module}.{name}" if module and name else repr(func))[:200]


def raw_task_describe(payload: dict) -> dict:
    """A raw task's function and arguments as readable, redacted text (never the pickle).

    The package is trusted only once its signature checks out, as a worker would; an unsigned
    or unreadable package is described as such."""
    args = payload.get("args") if isinstance(payload, dict) else None
    package = args[0] if isinstance(args, list) and args else None
    try:
        task = SignedPackage.loads(package)
    except (BadSignature, TypeError, ValueError, AttributeError) as exc:
        return {"function": None, "args": None, "kwargs": None, "error": f"unreadable: {exc}"}
    return {
        "function": function_path(task.get("func")),
        "args": redact(repr(tuple(task.get("args") or ()))),
        "kwargs": redact(repr(dict(task.get("kwargs") or {}))),
        "error": None,
    }
