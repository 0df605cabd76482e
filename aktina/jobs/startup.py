"""Hooks that bring the job layer up inside django-q2 processes and after migrations."""

from __future__ import annotations

import logging

from django.conf import settings

from aktina.core.scheduling import ensure_after_migrate, schedule_ensure

logger = logging.getLogger("aktina.jobs")

SWEEP_SCHEDULE = "aktina-jobs-sweep"


def on_worker_spawn(sender, proc_name: str = "", **kwargs) -> None:
    from django_q.conf import Conf

    from aktina.jobs.queues import queues_served_by
    from aktina.jobs.sweeper import sweeper_thread_start

    # qcluster refuses a cluster that serves no queue, so `served` is never empty here.
    served = queues_served_by(Conf.CLUSTER_NAME)
    logger.info("worker %s of cluster %r serves %s", proc_name, Conf.CLUSTER_NAME, served)
    # The thread's first sweep runs now, beside the worker's first task rather than before it.
    sweeper_thread_start()


def schedules_ensure() -> None:
    """Create or update the sweeper's django-q2 schedule; idempotent."""
    schedule_ensure(
        name=SWEEP_SCHEDULE,
        func="aktina.jobs.sweeper.sweep",
        every="MINUTES",
        minutes=max(1, settings.JOBS_SWEEP_SECONDS // 60),
    )


schedules_ensure_after_migrate = ensure_after_migrate(schedules_ensure)
