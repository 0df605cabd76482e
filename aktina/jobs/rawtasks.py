"""django-q2's own tasks (`async_task`, schedules) as ledger runs.

The run stores django-q2's signed task package unchanged. A worker runs it only after the
signature checks out (HMAC with SECRET_KEY, django-q2's own rule for its broker messages), so a
row written by anyone without the key cannot name a function for a worker to import: the tamper
rule of the ledger (workers run registered job classes only) holds, with `DjangoQTask` as the
registered class and the signature standing in for the registry.
"""

from __future__ import annotations

import pydoc

from django.conf import settings
from django.core.signing import BadSignature
from django_q.conf import Conf
from django_q.signing import SignedPackage

from aktina.jobs.exceptions import PermanentError
from aktina.jobs.job import Job


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
    return run_dispatch(spec=spec)
