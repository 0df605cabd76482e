"""The console's pages: the live queue page and monitored tags. Reading them needs
`jobs.view_jobrun`; writes need staff, `jobs.operate_jobs` and a POST."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from aktina.core.charts import GREEN, RED, stacked_bar_chart
from aktina.core.pages import page_needs
from aktina.jobs.console.health import queue_health
from aktina.jobs.console.tags import TagRefused, monitored_tags_overview, tag_monitor, tag_unmonitor
from aktina.jobs.pausing import queue_pause, queue_resume
from aktina.jobs.retrying import runs_retry_matching

OPERATE = "jobs.operate_jobs"
# How often the queue page asks for fresh figures (htmx polling; seconds).
REFRESH_SECONDS = 5


@page_needs("jobs.view_jobrun")
def queues(request):
    """The queue page; an htmx request (its own poll) gets only the live part."""
    context = {
        "health": _charted(queue_health()),
        "can_operate": request.user.has_perm(OPERATE),
        "now": timezone.now(),
        "refresh_seconds": REFRESH_SECONDS,
    }
    template = "console/_queues_live.html" if request.htmx else "console/queues.html"
    return render(request, template, context)


def _charted(health: dict) -> dict:
    for q in health["queues"]:
        q["chart"] = stacked_bar_chart(
            [(b.strftime("%H:00"), (ok, failed)) for b, ok, failed in q["series"]],
            chart_id=f"chart-queue-{q['queue']}", title=f"{q['queue']}: finished runs per hour",
            colors=(GREEN, RED), series=("succeeded", "failed"), width=240, height=36,
            axis=False,
        )  # fmt: skip
    health["chart"] = stacked_bar_chart(
        [(b.strftime("%H:00"), (ok, failed)) for b, ok, failed in health["series"]],
        chart_id="chart-queue-throughput", title="Finished runs per hour, all queues (24 h)",
        colors=(GREEN, RED), series=("succeeded", "failed"), label_every=4, height=140,
    )  # fmt: skip
    health["minute_chart"] = stacked_bar_chart(
        [(b.strftime("%H:%M"), (ok, failed)) for b, ok, failed in health["minutes"]],
        chart_id="chart-queue-minutes", title="Finished runs per minute, all queues (last hour)",
        colors=(GREEN, RED), series=("succeeded", "failed"), label_every=10, height=140,
    )  # fmt: skip
    return health


def _operated_queue(request, queue: str) -> str:
    if queue not in settings.JOBS_QUEUES:
        raise Http404(f"No queue named {queue!r}.")
    if not request.user.has_perm(OPERATE):
        raise PermissionDenied
    return queue


@require_POST
@staff_member_required
def queue_retry_failed(request, queue: str):
    queue = _operated_queue(request, queue)
    retried, _ = runs_retry_matching(queue=queue)
    if retried:
        messages.success(request, f"{retried} failed run(s) of {queue!r} are queued again.")
    else:
        messages.info(request, f"Queue {queue!r} had no failed runs to retry.")
    return redirect("console:queues")


@require_POST
@staff_member_required
def queue_pause_view(request, queue: str):
    queue = _operated_queue(request, queue)
    queue_pause(queue=queue, user=request.user)
    messages.success(request, f"Queue {queue!r} is paused: runs are accepted, none starts.")
    return redirect("console:queues")


@require_POST
@staff_member_required
def queue_resume_view(request, queue: str):
    queue = _operated_queue(request, queue)
    if queue_resume(queue=queue):
        messages.success(request, f"Queue {queue!r} is resumed.")
    else:
        messages.info(request, f"Queue {queue!r} was not paused.")
    return redirect("console:queues")


@page_needs("jobs.view_jobrun")
def tags(request):
    return render(
        request,
        "console/tags.html",
        {"overview": monitored_tags_overview(), "can_operate": request.user.has_perm(OPERATE)},
    )


@require_POST
@staff_member_required
def tag_add(request):
    if not request.user.has_perm(OPERATE):
        raise PermissionDenied
    try:
        pinned = tag_monitor(tag=request.POST.get("tag", ""), user=request.user)
        messages.success(request, f"Monitoring {pinned.tag}.")
    except TagRefused as exc:
        messages.error(request, str(exc))
    return redirect("console:tags")


@require_POST
@staff_member_required
def tag_remove(request):
    if not request.user.has_perm(OPERATE):
        raise PermissionDenied
    tag = request.POST.get("tag", "")
    if tag_unmonitor(tag=tag):
        messages.success(request, f"No longer monitoring {tag}.")
    else:
        messages.info(request, f"{tag} was not monitored.")
    return redirect("console:tags")
