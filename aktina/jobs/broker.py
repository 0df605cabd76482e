"""The ledger as django-q2's broker (`Q_CLUSTER["broker_class"]`): the `JobRun` table is the queue.

A message is a run the cluster has already claimed: `dequeue` takes up to `bulk` due runs and
claims them in the same statement (aktina.jobs.lifecycle.runs_claim: running, attempt counted,
held by the cluster's process row), and the message carries the claimed row to a worker, which
therefore issues no claim of its own. A run held by a cluster that dies is handed back once its
heartbeat is stale (aktina.jobs.processes). Dispatch is the run's own INSERT, in the caller's
transaction, so there is no second write and no message to lose or re-send.

Waiting for work: on PostgreSQL the pusher LISTENs on `aktina_jobs` (a dispatching transaction
sends one NOTIFY when it commits) and wakes at once; polling every `poll` seconds stays what
guarantees delivery (a NOTIFY is lost with a dropped connection, and never passes PgBouncer in
transaction mode). SQLite polls.

django-q2's own `async_task` and schedules come through `enqueue`: their signed task package
becomes a run of `DjangoQTask`, so raw tasks are ledger rows too (one table for operators).
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid

from django.db import DatabaseError, close_old_connections, connection
from django.utils import timezone
from django_q.brokers import Broker
from django_q.conf import Conf
from django_q.signing import SignedPackage

from aktina.jobs.clock import db_now
from aktina.jobs.lifecycle import runs_claim
from aktina.jobs.models import JobRun
from aktina.jobs.pausing import queues_paused
from aktina.jobs.queues import queues_served_by
from aktina.jobs.rawtasks import raw_task_dispatch

logger = logging.getLogger("aktina.jobs")

PERFORM = "aktina.jobs.worker.perform_claimed"
CHANNEL = "aktina_jobs"


def queues_to_serve(cluster: str) -> list[str]:
    paused = queues_paused()
    return [q for q in queues_served_by(cluster) if q not in paused]


def message_build(run: JobRun, cluster: str) -> str:
    """The task package django-q2's worker runs: the ledger's worker entry with the claimed run.
    django-q2 starts the run's timeout when a worker takes the message, not before."""
    return SignedPackage.dumps(
        {
            "id": uuid.uuid4().hex,
            "name": f"run-{run.pk}",
            "func": PERFORM,
            "args": (run,),
            "kwargs": {},
            "cluster": cluster,
            "timeout": run.timeout,
            "ack_failure": True,
            "started": timezone.now(),
        }
    )


class Listener:
    """A dedicated autocommit connection LISTENing on CHANNEL (PostgreSQL only)."""

    def __init__(self):
        self.conn = None

    def wait(self, seconds: float) -> None:
        """Return when a NOTIFY arrives or after `seconds`, whichever first."""
        try:
            if self.conn is None or self.conn.closed:
                import psycopg

                params = connection.get_connection_params()
                params.pop("cursor_factory", None)
                params.pop("context", None)
                self.conn = psycopg.connect(**params, autocommit=True)
                self.conn.execute(f"LISTEN {CHANNEL}")
            for _ in self.conn.notifies(timeout=seconds, stop_after=1):
                break
            # Notifications that piled up while the cluster was busy: one claim answers them all.
            for _ in self.conn.notifies(timeout=0):
                pass
        except Exception:
            logger.warning("LISTEN %s failed; polling meanwhile", CHANNEL, exc_info=True)
            self.close()
            time.sleep(seconds)

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.close()
            self.conn = None


class LedgerBroker(Broker):
    """django-q2's broker interface over the `JobRun` table."""

    # The cluster process row that holds what this broker claims; set by the sentinel before it
    # starts the pusher (aktina.jobs.sentinel).
    holder_id: int | None = None
    worker: str = ""
    _listener: Listener | None = None

    def info(self) -> str:
        return "Aktina job ledger"

    def ping(self) -> bool:
        return True

    def enqueue(self, task: str) -> int:
        # A raw django-q2 task package (async_task, a Schedule): it becomes a ledger run.
        return raw_task_dispatch(package=task, cluster=self.list_key).pk

    def dequeue(self):
        if self.holder_id is None:
            raise RuntimeError("LedgerBroker.dequeue needs the cluster's process row (holder_id)")
        try:
            runs = runs_claim(
                queues=queues_to_serve(self.list_key),
                limit=Conf.BULK,
                holder_id=self.holder_id,
                worker=self.worker,
            )
        except DatabaseError:
            # A dropped connection or a busy SQLite file: try again next poll rather than let
            # django-q2's pusher give up for 10 s.
            logger.warning("ledger dequeue failed; retrying", exc_info=True)
            close_old_connections()
            runs = []
        if not runs:
            self._idle()
            return None
        return [(run.pk, message_build(run, self.list_key)) for run in runs]

    def _idle(self) -> None:
        if connection.vendor != "postgresql":
            time.sleep(Conf.POLL)
            return
        if self._listener is None:
            self._listener = Listener()
        self._listener.wait(Conf.POLL)

    def queue_size(self) -> int:
        """Due runs that no cluster holds."""
        return JobRun.objects.filter(
            status=JobRun.Status.QUEUED,
            queue__in=queues_to_serve(self.list_key),
            available_at__lte=db_now(),
        ).count()

    def lock_size(self) -> int:
        """Runs claimed by this cluster (running or waiting in its memory)."""
        if self.holder_id is None:
            return 0
        return JobRun.objects.filter(status=JobRun.Status.RUNNING, holder_id=self.holder_id).count()

    def acknowledge(self, task_id) -> None:
        # The claim and the completion already recorded everything.
        return None

    def fail(self, task_id) -> None:
        return None

    def delete(self, task_id) -> None:
        return None

    def purge_queue(self) -> None:
        # Dropping runs is an operator's decision (`manage.py jobs cancel`), not a broker's.
        return None

    def delete_queue(self) -> None:
        return None
