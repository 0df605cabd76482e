"""django-q2's `qcluster`, with a sentinel that survives a child killed outright
(aktina.jobs.sentinel). Lives in aktina.core because that app comes before django_q."""

import os
import uuid

from django.conf import settings
from django.core.management.base import CommandError
from django_q.conf import Conf
from django_q.management.commands.qcluster import Command as QClusterCommand

from aktina.jobs import sentinel
from aktina.jobs.queues import cluster_for, queues_served_by
from aktina.jobs.worker import BOOT_ENV

# django-q2 gives a timed-out task this long before its guard kills the worker (3 s of buffer
# added by the worker, then one guard cycle to notice).
KILL_BUFFER_SECONDS = 3


def kill_margin() -> float:
    return KILL_BUFFER_SECONDS + float(Conf.GUARD_CYCLE)


class Command(QClusterCommand):
    def handle(self, *args, **options):
        margin = kill_margin()
        grace = settings.JOBS_LEASE_GRACE_SECONDS
        if grace <= margin:
            # A lease shorter than timeout + margin could run out while the timed-out worker
            # still runs, and a second worker would claim the run: two executions.
            raise CommandError(
                f"JOBS_LEASE_GRACE_SECONDS={settings.JOBS_LEASE_GRACE_SECONDS} must exceed "
                f"django-q2's kill margin after a timeout ({margin:g} s); set it to "
                f"{int(margin) + 1} or more."
            )
        name = options.get("cluster_name") or os.environ.get("Q_CLUSTER_NAME") or Conf.CLUSTER_NAME
        if not queues_served_by(name):
            # It would start, serve nothing, and look to an operator like a working cluster.
            clusters = sorted({cluster_for(queue) for queue in settings.JOBS_QUEUES})
            raise CommandError(
                f"cluster {name!r} serves no queue; the clusters are {', '.join(clusters)} "
                "(a queue gets its own cluster through JOBS_DEDICATED_QUEUES)"
            )
        os.environ[BOOT_ENV] = uuid.uuid4().hex[:12]
        sentinel.install()
        return super().handle(*args, **options)
