"""Sending `run id` messages to django-q2: the only thing the broker ever carries."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable

from django.utils import timezone
from django_q.brokers import get_broker
from django_q.brokers.orm import ORM
from django_q.conf import Conf
from django_q.models import OrmQ
from django_q.signing import SignedPackage

from aktina.jobs.queues import cluster_for

PERFORM = "aktina.jobs.worker.perform"

_brokers: dict[str, object] = {}


def _broker(cluster: str):
    # One broker object per cluster and process: building one opens a connection (Redis).
    if cluster not in _brokers:
        _brokers[cluster] = get_broker(cluster)
    return _brokers[cluster]


def _package(run_id: int, timeout: int, cluster: str) -> str:
    # The same task dict django-q2's async_task builds, without its per-call overhead.
    return SignedPackage.dumps(
        {
            "id": uuid.uuid4().hex,
            "name": f"run-{run_id}",
            "func": PERFORM,
            "args": (run_id, timeout),
            "kwargs": {},
            "cluster": cluster,
            "timeout": timeout,
            "ack_failure": Conf.ACK_FAILURES,
            "started": timezone.now(),
        }
    )


def messages_send(runs: Iterable[tuple[int, str, int]]) -> None:
    """Send one message per (run id, queue, timeout), grouped per cluster."""
    by_cluster: dict[str, list[str]] = defaultdict(list)
    for run_id, queue, timeout in runs:
        cluster = cluster_for(queue)
        by_cluster[cluster].append(_package(run_id, timeout, cluster))
    for cluster, packages in by_cluster.items():
        broker = _broker(cluster)
        if isinstance(broker, ORM):
            # Our own INSERT rather than broker.enqueue, which closes the caller's connection
            # before every message when called outside a transaction. One row: a plain save,
            # a single round trip (bulk_create adds BEGIN/COMMIT around it).
            now = timezone.now()
            rows = [OrmQ(key=cluster, payload=p, lock=now) for p in packages]
            if len(rows) == 1:
                rows[0].save(using=Conf.ORM, force_insert=True)
            else:
                OrmQ.objects.using(Conf.ORM).bulk_create(rows)
        else:
            for package in packages:
                broker.enqueue(package)


def messages_waiting(cluster: str) -> int:
    """Messages the broker holds for `cluster` that no cluster has taken yet."""
    broker = _broker(cluster)
    if isinstance(broker, ORM):
        # What ORM.queue_size counts, without its close_old_connections() side effect.
        return OrmQ.objects.using(Conf.ORM).filter(key=cluster, lock__lte=timezone.now()).count()
    return broker.queue_size() or 0
