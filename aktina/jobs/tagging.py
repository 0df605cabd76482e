"""Tags: labels operators search runs by (`order:1234`), written with the run at dispatch.

Every model argument tags its run as `<model>:<pk>` (found in the stored payload, so chain
links, batch members and retries are tagged the same way as direct dispatches); `Job.tags()`
adds the job's own (`product:SKU-0006`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aktina.jobs.bulk_insert import tags_insert
from aktina.jobs.models import JobRun, JobRunTag
from aktina.jobs.spec import DispatchSpec

MAX_TAGS = 20
MAX_LENGTH = JobRunTag._meta.get_field("tag").max_length


def payload_tags(payload: Any) -> list[str]:
    """`<model>:<pk>` for every model reference in a stored payload, in argument order."""
    found: list[str] = []

    def walk(container: Any) -> None:
        # Only containers are visited: a payload is mostly scalars, and calls cost.
        for value in container.values() if isinstance(container, dict) else container:
            if isinstance(value, dict):
                if "__model__" in value:
                    found.append(f"{value['__model__'].rsplit('.', 1)[-1]}:{value['pk']}")
                else:
                    walk(value)
            elif isinstance(value, list):
                walk(value)

    if isinstance(payload, dict) and "__model__" in payload:
        return [f"{payload['__model__'].rsplit('.', 1)[-1]}:{payload['pk']}"]
    if isinstance(payload, dict | list):
        walk(payload)
    return found


def spec_tags(spec: DispatchSpec) -> list[str]:
    """The tags of a run created from `spec`: model arguments, then the job's own; unique,
    at most MAX_TAGS, each cut to the column's length."""
    tags = payload_tags(spec.payload or {}) + list(spec.tags)
    if not tags:
        return tags
    clean = dict.fromkeys(str(t).strip()[:MAX_LENGTH] for t in tags)
    return [t for t in clean if t][:MAX_TAGS]


def run_tags_write(*, runs: Iterable[tuple[JobRun, DispatchSpec]]) -> None:
    """Store the tags of freshly inserted runs (each with its spec) in one INSERT; none when
    no run has a tag."""
    tags_insert([(run.pk, tag) for run, spec in runs for tag in spec_tags(spec)])


def runs_tagged(tag: str):
    """Runs carrying `tag`, newest first: one range of the (tag, run) index."""
    return JobRun.objects.filter(
        pk__in=JobRunTag.objects.filter(tag=tag).values("run_id")
    ).order_by("-id")
