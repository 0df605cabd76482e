"""Paused queues: dispatch keeps writing their runs, no worker starts one until resumed.

The pause is a row (`QueuePause`) every host reads; each process caches the set of paused
queues for at most one sweeper interval, so the claim path costs no query per run and every
host honours a pause or a resume within `JOBS_SWEEP_SECONDS`.
"""

from __future__ import annotations

import getpass
import socket
import threading
import time

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from aktina.jobs.models import QueuePause
from aktina.jobs.queues import cluster_for

_lock = threading.Lock()
_cached: tuple[float, frozenset[str]] | None = None


def queues_paused() -> set[str]:
    """The queues paused now, as this process last read them (at most one sweep ago)."""
    global _cached
    now = time.monotonic()
    with _lock:
        if _cached is not None and now - _cached[0] < settings.JOBS_SWEEP_SECONDS:
            return set(_cached[1])
    paused = frozenset(QueuePause.objects.values_list("queue", flat=True))
    with _lock:
        _cached = (now, paused)
    return set(paused)


def queues_paused_forget() -> None:
    """Drop this process's cached set (a pause or resume made here is seen at once here)."""
    global _cached
    with _lock:
        _cached = None


def queue_pause(*, queue: str, user=None) -> QueuePause:
    """Pause `queue`; pausing a paused queue keeps who paused it first, and when."""
    _known(queue)
    who = "" if user is not None else f"{getpass.getuser()}@{socket.gethostname()}"
    with transaction.atomic():
        pause, _ = QueuePause.objects.get_or_create(
            queue=queue,
            defaults={"paused_by": user, "paused_by_name": who, "paused_at": timezone.now()},
        )
    queues_paused_forget()
    return pause


def queue_resume(*, queue: str) -> bool:
    """Resume `queue`; returns False when it was not paused."""
    _known(queue)
    deleted, _ = QueuePause.objects.filter(queue=queue).delete()
    queues_paused_forget()
    return bool(deleted)


def queue_pauses() -> dict[str, QueuePause]:
    """What the queue page shows: each paused queue with who paused it and when."""
    return {p.queue: p for p in QueuePause.objects.select_related("paused_by")}


def _known(queue: str) -> None:
    cluster_for(queue)  # raises ValueError naming the configured queues
