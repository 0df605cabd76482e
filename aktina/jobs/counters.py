"""Counts of recovery actions, kept in the database so every process and host adds to one
total: the sweeper's expiries and re-sends, the sentinel's pool resets and handed-back runs.
/metrics (aktina.jobs.metrics) reports them as Prometheus counters."""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction
from django.db.models import F

from aktina.jobs.models import JobCounter

logger = logging.getLogger("aktina.jobs")


def counters_add(*, group: str, counts: dict[str, int], label: str = "") -> dict[str, int]:
    """Add each positive count to `<group>_<name>`; returns `counts`, so a caller can wrap its
    own result. Never raises: a lost count must not fail the recovery it counts."""
    for name, n in counts.items():
        if not n or n < 0:
            continue
        try:
            _counter_add(f"{group}_{name}", label, int(n))
        except Exception:
            logger.exception("could not count %s_%s", group, name)
    return counts


def _counter_add(name: str, label: str, n: int) -> None:
    rows = JobCounter.objects.filter(name=name, label=label)
    if rows.update(value=F("value") + n):
        return
    try:
        with transaction.atomic():
            JobCounter.objects.create(name=name, label=label, value=n)
    except IntegrityError:
        rows.update(value=F("value") + n)  # another process created it first


def counters_read() -> list[tuple[str, str, int]]:
    return list(JobCounter.objects.order_by("name", "label").values_list("name", "label", "value"))
