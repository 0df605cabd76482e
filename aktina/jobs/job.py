"""The `Job` base class: what a job author subclasses.

A job is a small class whose constructor takes the arguments (model instances welcome) and
whose `handle()` calls one service. Class attributes set the queue, timeout, tries, backoff,
deadline and uniqueness, as Laravel's queued jobs do.
"""

from __future__ import annotations

import datetime as dt
import functools
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar, Self

from django.utils import timezone

from aktina.jobs.dispatching import run_dispatch, runs_dispatch_many
from aktina.jobs.exceptions import PermanentError, Release
from aktina.jobs.models import JobRun
from aktina.jobs.serialization import dump_arguments
from aktina.jobs.spec import DispatchSpec

_registry: dict[str, type[Job]] = {}


def registered_job(name: str) -> type[Job] | None:
    return _registry.get(name)


class _DispatchDescriptor:
    """`MyJob.dispatch(*args)` builds and dispatches; `job.dispatch()` dispatches `job`."""

    def __init__(self, func):
        self.func = func
        functools.update_wrapper(self, func)

    def __get__(self, instance, owner):
        if instance is None:
            return lambda *args, **kwargs: self.func(owner(*args, **kwargs))
        return functools.partial(self.func, instance)


class Job(ABC):
    queue: ClassVar[str] = "default"
    # Among due runs of one cluster, higher goes first (-100..100, as django.tasks).
    priority: ClassVar[int] = 0
    timeout: ClassVar[int] = 60
    tries: ClassVar[int] = 1
    backoff: ClassVar[int | list[int]] = 0
    retry_for: ClassVar[dt.timedelta | None] = None
    # How long a unique key may block new dispatches at most (a stuck run cannot block forever).
    unique_for: ClassVar[dt.timedelta | None] = None
    # Release the unique key when the run starts rather than when it ends.
    unique_until_processing: ClassVar[bool] = False
    # When an argument's row is gone: True cancels the run quietly, False fails it.
    delete_when_missing_models: ClassVar[bool] = False
    # False when failed() already tells the right people (the generic alert would repeat it).
    notify_operations_on_failure: ClassVar[bool] = True

    job_name: ClassVar[str]

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.job_name = f"{cls.__module__}.{cls.__qualname__}"
        # ABCMeta computes __abstractmethods__ only after this hook, so look at handle itself.
        if not getattr(cls.handle, "__isabstractmethod__", False):
            _registry[cls.job_name] = cls

    def __new__(cls, *args: Any, **kwargs: Any) -> Self:
        instance = super().__new__(cls)
        # Kept to rebuild the job in the worker; subclasses' __init__ stays plain Python.
        instance._arguments = (args, kwargs)
        instance._delay = None
        instance._queue = None
        instance.attempt = 0
        instance.rate_limited_at = None
        instance.run = None
        return instance

    # --- what a job author writes --------------------------------------------------------
    @abstractmethod
    def handle(self) -> None:
        """Do the work; raise `PermanentError` when a retry cannot help."""

    def failed(self, exc: BaseException) -> None:
        """Called once after the last attempt failed; a no-op unless a job overrides it."""
        return None

    def unique_id(self) -> str | None:
        """A key that allows only one active run at a time; None means not unique."""
        return None

    def middleware(self) -> list:
        return []

    def tags(self) -> list[str]:
        """Labels to find this job's runs by, beyond the automatic `<model>:<pk>` of each
        model argument (`aktina.jobs.tagging`)."""
        return []

    # --- what a handler may call ---------------------------------------------------------
    def release(self, delay: float = 0) -> None:
        raise Release(delay)

    def fail(self, exc: BaseException | str | None = None) -> None:
        if isinstance(exc, BaseException):
            raise PermanentError(str(exc)) from exc
        raise PermanentError(exc or "failed by the job")

    # --- dispatching ---------------------------------------------------------------------
    def delay(self, delay: dt.timedelta | float | dt.datetime) -> Self:
        self._delay = delay
        return self

    def on_queue(self, queue: str) -> Self:
        self._queue = queue
        return self

    @_DispatchDescriptor
    def dispatch(self) -> JobRun:
        return run_dispatch(spec=self.to_spec())

    @classmethod
    def dispatch_many(cls, jobs: Sequence[Job]) -> list[JobRun]:
        """Dispatch many jobs (of any classes) at once: their runs in one multi-row INSERT, their
        tags in one more, one run per job in order. Unique keys hold as for `dispatch()`: a job
        whose key is active gets that run back, and jobs sharing a key collapse to one run."""
        return runs_dispatch_many(specs=[job.to_spec() for job in jobs])

    def to_spec(self) -> DispatchSpec:
        """Everything the ledger needs to create a run of this job."""
        args, kwargs = self._arguments
        backoff = self.backoff if isinstance(self.backoff, list) else [self.backoff]
        return DispatchSpec(
            job=self.job_name,
            queue=self._queue or self.queue,
            priority=int(self.priority),
            payload=dump_arguments(args, kwargs),
            tries=max(1, int(self.tries)),
            timeout=int(self.timeout),
            backoff=tuple(map(float, backoff)),
            retry_for=self.retry_for.total_seconds() if self.retry_for else None,
            unique_key=self.unique_id(),
            unique_for=self.unique_for.total_seconds() if self.unique_for else None,
            unique_until_processing=self.unique_until_processing,
            delay=_delay_seconds(self._delay),
            tags=tuple(self.tags()),
        )


def _delay_seconds(delay: dt.timedelta | float | dt.datetime | None) -> float:
    if delay is None:
        return 0.0
    if isinstance(delay, dt.datetime):
        return max(0.0, (delay - timezone.now()).total_seconds())
    if isinstance(delay, dt.timedelta):
        return max(0.0, delay.total_seconds())
    return max(0.0, float(delay))


# `from aktina.jobs import dispatch_many`: the same as `Job.dispatch_many`.
dispatch_many = Job.dispatch_many
