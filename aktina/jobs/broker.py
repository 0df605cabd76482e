"""The ledger as django-q2's broker (`Q_CLUSTER["broker_class"]`): the `JobRun` table is the queue.

A message is a run id read from the table: dispatch is the run's own INSERT, in the caller's
transaction, so there is no second write and no message to lose or re-send. `dequeue` marks up
to `bulk` due runs delivered in one statement; a delivered run that no worker claimed (its
cluster died with it in memory) is due again once `delivered_until` passes. The claim and the
finish UPDATE decide what runs, so acknowledging a message costs nothing.

django-q2's own `async_task` and schedules come through `enqueue`: their signed task package
becomes a run of `DjangoQTask`, so raw tasks are ledger rows too (one table for operators).
"""

from __future__ import annotations

import logging
import time
import uuid

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection
from django.utils import timezone
from django_q.brokers import Broker
from django_q.conf import Conf
from django_q.signing import SignedPackage

from aktina.jobs.clock import later_param, later_sql, now_sql
from aktina.jobs.models import JobRun
from aktina.jobs.pausing import queues_paused
from aktina.jobs.queues import queues_served_by

logger = logging.getLogger("aktina.jobs")

PERFORM = "aktina.jobs.worker.perform"


def queues_to_serve(cluster: str) -> list[str]:
    paused = queues_paused()
    return [q for q in queues_served_by(cluster) if q not in paused]


def message_build(run_id: int, timeout: int, cluster: str) -> str:
    """The task package django-q2's worker runs: the ledger's worker entry with the run id."""
    return SignedPackage.dumps(
        {
            "id": uuid.uuid4().hex,
            "name": f"run-{run_id}",
            "func": PERFORM,
            "args": (run_id, timeout),
            "kwargs": {},
            "cluster": cluster,
            "timeout": timeout,
            "ack_failure": True,
            "started": timezone.now(),
        }
    )


def runs_deliver(*, queues: list[str], limit: int) -> list[tuple[int, int]]:
    """Mark up to `limit` due runs of `queues` delivered; returns (run id, timeout) pairs in
    delivery order (priority, then available_at). One statement on either database."""
    if not queues or limit <= 0:
        return []
    table = connection.ops.quote_name(JobRun._meta.db_table)
    in_queues = ", ".join(["%s"] * len(queues))
    postgres = connection.vendor == "postgresql"
    lock = " FOR UPDATE SKIP LOCKED" if postgres else ""
    # Walk the partial index in delivery order and stop after `limit` rows; without stats
    # SQLite would rather sort every due run on each poll (a long backlog's worth).
    index = "" if postgres else " INDEXED BY jobrun_dequeue"
    # SQLite: the UPDATE takes the database's write lock for the whole statement, so two
    # clusters never deliver the same run; PostgreSQL: SKIP LOCKED lets them split the rows.
    sql = (
        f"UPDATE {table} SET delivered_until = {later_sql()} WHERE id IN ("
        # The status as a literal: a bound parameter would keep SQLite's planner from using the
        # partial index (WHERE status = 'queued').
        f"SELECT id FROM {table}{index} WHERE status = '{JobRun.Status.QUEUED.value}' "
        f"AND queue IN ({in_queues}) "
        f"AND available_at <= {now_sql()} "
        f"AND (delivered_until IS NULL OR delivered_until <= {now_sql()}) "
        f"ORDER BY priority DESC, available_at, id LIMIT %s{lock}"
        ") RETURNING id, timeout, priority, available_at"
    )
    params = [
        later_param(settings.JOBS_REDELIVER_SECONDS),
        *queues,
        limit,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    # RETURNING follows no particular order.
    rows.sort(key=lambda r: (-r[2], str(r[3]), r[0]))
    return [(r[0], r[1]) for r in rows]


class LedgerBroker(Broker):
    """django-q2's broker interface over the `JobRun` table."""

    def info(self) -> str:
        return "Aktina job ledger"

    def ping(self) -> bool:
        return True

    def enqueue(self, task: str) -> int:
        # A raw django-q2 task package (async_task, a Schedule): it becomes a ledger run.
        from aktina.jobs.rawtasks import raw_task_dispatch

        return raw_task_dispatch(package=task, cluster=self.list_key).pk

    def dequeue(self):
        try:
            runs = runs_deliver(queues=queues_to_serve(self.list_key), limit=Conf.BULK)
        except DatabaseError:
            # A dropped connection or a busy SQLite file: try again next poll rather than let
            # django-q2's pusher give up for 10 s.
            logger.warning("ledger dequeue failed; retrying", exc_info=True)
            close_old_connections()
            runs = []
        if not runs:
            time.sleep(Conf.POLL)
            return None
        return [(run_id, message_build(run_id, timeout, self.list_key)) for run_id, timeout in runs]

    def queue_size(self) -> int:
        """Due runs that no cluster holds."""
        from aktina.jobs.clock import db_now

        now = db_now()
        return (
            JobRun.objects.filter(
                status=JobRun.Status.QUEUED,
                queue__in=queues_to_serve(self.list_key),
                available_at__lte=now,
            )
            .exclude(delivered_until__gt=now)
            .count()
        )

    def lock_size(self) -> int:
        """Runs delivered to a cluster and not yet claimed."""
        from aktina.jobs.clock import db_now

        return JobRun.objects.filter(
            status=JobRun.Status.QUEUED,
            queue__in=queues_served_by(self.list_key),
            delivered_until__gt=db_now(),
        ).count()

    def acknowledge(self, task_id) -> None:
        # The run's finish UPDATE already recorded the outcome.
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
