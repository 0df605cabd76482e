"""django-q2's `qcluster`, running the ledger's cluster (aktina.jobs.sentinel): batched claims
and completions, a heartbeat in the process table, and a shutdown that ends every process within
seconds of SIGTERM or SIGINT to the process group (what systemd and Ctrl-C send).

aktina.jobs comes before django_q in INSTALLED_APPS, so this command is the `qcluster`.
"""

import faulthandler
import os
import signal
import time
import uuid

from django.conf import settings
from django.core.management.base import CommandError
from django_q.cluster import Cluster
from django_q.conf import Conf
from django_q.management.commands.qcluster import Command as QClusterCommand

from aktina.jobs import sentinel
from aktina.jobs.queues import cluster_for, queues_served_by
from aktina.jobs.worker import BOOT_ENV

LEDGER_BROKER = "aktina.jobs.broker.LedgerBroker"
# django-q2 gives a timed-out task this long before its guard kills the worker (3 s of buffer
# added by the worker, then one guard cycle to notice).
KILL_BUFFER_SECONDS = 3
# The sentinel's own shutdown takes at most grace + ~5 s; then it is killed.
STOP_MARGIN_SECONDS = 8


def kill_margin() -> float:
    return KILL_BUFFER_SECONDS + float(Conf.GUARD_CYCLE)


class Command(QClusterCommand):
    help = (
        "Start the job cluster that serves the queues of --name (default: every queue not in "
        "JOBS_DEDICATED_QUEUES). SIGTERM or SIGINT stops it within seconds; runs that did not "
        "finish go back to their queue."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        for action in parser._actions:
            if action.dest == "cluster_name":
                action.help = (
                    "the cluster to run: a queue listed in JOBS_DEDICATED_QUEUES, or the default "
                    f"cluster {settings.JOBS_DEFAULT_CLUSTER!r} (the default; Q_CLUSTER_NAME in "
                    "the environment is read when --name is not given)"
                )

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
        # `kill -USR1 <pid>` prints where each thread of that cluster process is (stderr).
        faulthandler.register(signal.SIGUSR1, all_threads=True)
        os.environ["Q_CLUSTER_NAME"] = name
        os.environ[BOOT_ENV] = uuid.uuid4().hex[:12]
        if settings.Q_CLUSTER.get("broker_class") != LEDGER_BROKER:
            # A stock django-q2 broker (bench/raw_settings.py compares against one): its own
            # cluster, which acknowledges messages and saves results as that broker expects.
            return super().handle(*args, **options)
        sentinel.install()
        self._run(name)

    def _run(self, name: str) -> None:
        settings.SECRET_KEY  # noqa: B018 - signing needs it: fail here, not in the pusher
        # Started in the background by a shell (`make run`'s scripts/run.sh), SIGINT arrives
        # ignored: it stays ignored, and the script's SIGTERM stops the cluster. Otherwise a
        # Ctrl-C could end the cluster before the script heard of it, and the script would
        # report the cluster's exit as a failure.
        interrupt_ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
        cluster = Cluster()
        stopping = []
        # Signals only set a flag: the stop runs in the main thread below, never inside a
        # handler that may interrupt the main thread in the middle of the same calls.
        signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
        if interrupt_ignored:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        else:
            signal.signal(signal.SIGINT, lambda *_: stopping.append(1))
        cluster.start()
        while not stopping and cluster.sentinel.is_alive():
            time.sleep(0.1)
        # A signal rather than stop_event.set(): the event's lock may be held by a process that
        # the same group signal has just killed.
        if cluster.sentinel.is_alive():
            os.kill(cluster.sentinel.pid, signal.SIGTERM)
        cluster.sentinel.join(settings.JOBS_SHUTDOWN_GRACE_SECONDS + STOP_MARGIN_SECONDS)
        if cluster.sentinel.is_alive():
            self.stderr.write(f"cluster {name}: the sentinel did not stop in time; killed")
            cluster.sentinel.kill()
            cluster.sentinel.join(5)
