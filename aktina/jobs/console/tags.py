"""Monitored tags (Horizon's): operators pin tags such as `order:1234` and watch their runs."""

from __future__ import annotations

import re

from django.db import IntegrityError, transaction
from django.utils import timezone

from aktina.jobs.console.models import MonitoredTag
from aktina.jobs.models import JobRun
from aktina.jobs.selectors import run_label
from aktina.jobs.tagging import runs_tagged

# The shape of every tag the ledger writes: `<model>:<pk>` or a job's own `name:value`.
TAG = re.compile(r"^[\w.-]+:\S+$")
MAX_LENGTH = MonitoredTag._meta.get_field("tag").max_length
# Runs shown per tag: the newest, and the newest failures (each one range of the tag index).
RECENT = 10


class TagRefused(ValueError):
    pass


def tag_monitor(*, tag: str, user=None) -> MonitoredTag:
    """Pin `tag`; pinning a pinned tag returns its row unchanged."""
    tag = tag.strip()
    if not TAG.match(tag) or len(tag) > MAX_LENGTH:
        raise TagRefused(
            f"{tag!r} is not a tag: tags read `name:value`, e.g. order:1234 or customer:42 "
            f"(at most {MAX_LENGTH} characters, no spaces)."
        )
    try:
        with transaction.atomic():
            return MonitoredTag.objects.create(tag=tag, added_by=user, added_at=timezone.now())
    except IntegrityError:
        return MonitoredTag.objects.get(tag=tag)


def tag_unmonitor(*, tag: str) -> bool:
    """Unpin `tag`; False when it was not pinned."""
    return MonitoredTag.objects.filter(tag=tag).delete()[0] > 0


def monitored_tags_overview(*, recent: int = RECENT) -> list[dict]:
    """Each pinned tag with its newest runs and newest failed runs. 1 + 2 queries per tag, each
    a range of the (tag, run) index; a tag's runs are few (one order's jobs), so the status
    filter reads only those."""
    overview = []
    for pinned in MonitoredTag.objects.select_related("added_by"):
        runs = runs_tagged(pinned.tag)
        latest = list(runs[:recent])
        failed = list(runs.filter(status__in=JobRun.FAILURES)[:recent])
        for run in (*latest, *failed):
            run.label = run_label(run)
        overview.append({"tag": pinned, "recent": latest, "failed": failed})
    return overview
