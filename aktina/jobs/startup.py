"""Hooks that bring the job layer up inside django-q2 processes and after migrations."""

from __future__ import annotations

import logging

from django_q.conf import Conf
from django_q.models import Schedule

from aktina.core.scheduling import ensure_after_migrate
from aktina.jobs.queues import queues_served_by

logger = logging.getLogger("aktina.jobs")

SWEEP_SCHEDULE = "aktina-jobs-sweep"


def on_worker_spawn(sender, proc_name: str = "", **kwargs) -> None:
    # qcluster refuses a cluster that serves no queue, so `served` is never empty here.
    served = queues_served_by(Conf.CLUSTER_NAME)
    logger.info("worker %s of cluster %r serves %s", proc_name, Conf.CLUSTER_NAME, served)


def schedules_ensure() -> None:
    """Remove the sweeper's old django-q2 schedule: every cluster's guard loop sweeps now (one
    sweeper per cluster); idempotent."""
    Schedule.objects.filter(name=SWEEP_SCHEDULE).delete()


schedules_ensure_after_migrate = ensure_after_migrate(schedules_ensure)
