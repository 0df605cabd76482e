"""Reads of single runs and run lists for the console's pages and API: what a run is about,
what cancelling it leaves undone, its arguments as operators may read them, filtered lists."""

from __future__ import annotations

import datetime as dt
import json

from django.apps import apps
from django.core.exceptions import ObjectDoesNotExist
from django.db.models import Q

from aktina.core.redaction import redact
from aktina.jobs.models import JobRun
from aktina.jobs.rawtasks import raw_task_describe
from aktina.jobs.selectors import RAW_TASK, run_label
from aktina.jobs.tagging import runs_tagged

Status = JobRun.Status


def run_subjects(run: JobRun) -> list[dict]:
    """The model instances a run was dispatched with (an order, a customer), as they are now:
    `label` ("Order ORD-1"), `state` (its status display, if it has one), `exists`."""
    subjects = []
    for ref in _model_refs(run.payload):
        try:
            model = apps.get_model(ref["__model__"])
        except (LookupError, ValueError):
            continue
        name = model._meta.verbose_name.capitalize()
        try:
            obj = model._default_manager.get(pk=ref["pk"])
        except (ObjectDoesNotExist, ValueError, TypeError):
            subjects.append({"label": f"{name} #{ref['pk']}", "state": None, "exists": False})
            continue
        state = obj.get_status_display() if hasattr(obj, "get_status_display") else None
        subjects.append({"label": f"{name} {obj}", "state": state, "exists": True})
    return subjects


def run_cancel_consequences(run: JobRun) -> list[str]:
    """What a cancel of `run` does not do, in words an operator can act on."""
    lines = [
        f"Run #{run.pk} ({run_label(run)}) will not start; nothing else does its work unless "
        "someone dispatches it again (Retry on the cancelled run does that).",
    ]
    for s in run_subjects(run):
        if not s["exists"]:
            lines.append(f"{s['label']} no longer exists.")
        elif s["state"]:
            lines.append(
                f"{s['label']} stays {s['state']}: cancelling changes nothing about it, and no "
                "later step of its workflow happens on its own."
            )
        else:
            lines.append(f"{s['label']} stays as it is.")
    if run.chain:
        lines.append(f"The {len(run.chain)} job(s) chained after this run will not be dispatched.")
    if run.batch_id:
        lines.append("Its batch counts it as ended (not failed).")
    return lines


def run_arguments(run: JobRun) -> dict:
    """The arguments as text for people: a django-q2 task's function and decoded arguments, a
    job's stored JSON (model references as they are stored); both redacted."""
    if run.job_name == RAW_TASK:
        return {"kind": "task", **raw_task_describe(run.payload)}
    return {"kind": "job", "payload": redact(json.dumps(run.payload, indent=1, sort_keys=True))}


def runs_filtered(
    *,
    queue: str | None = None,
    status: str | None = None,
    job: str | None = None,
    tag: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
):
    """Runs newest first, every filter given must hold. `job` is a job class path or a task's
    function path (`math.sqrt`); `since`/`until` bound `created_at`."""
    runs = runs_tagged(tag) if tag else JobRun.objects.order_by("-id")
    if queue:
        runs = runs.filter(queue=queue)
    if status:
        runs = runs.filter(status=status)
    if job:
        runs = runs.filter(Q(job_name=job) | Q(task_function=job))
    if since:
        runs = runs.filter(created_at__gte=since)
    if until:
        runs = runs.filter(created_at__lt=until)
    return runs


def _model_refs(value) -> list[dict]:
    found: list[dict] = []
    if isinstance(value, list):
        for v in value:
            found += _model_refs(v)
    elif isinstance(value, dict):
        if "__model__" in value:
            return [value]
        for v in value.values():
            found += _model_refs(v)
    return found
