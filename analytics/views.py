"""Pages for people: the business dashboard and the queue-health page (staff only)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from aktina.jobs.pausing import queue_pause, queue_resume
from aktina.jobs.retrying import runs_retry_matching
from analytics.charts import GREEN, RED, bar_chart, funnel_chart, stacked_bar_chart
from analytics.selectors import dashboard_analytics, queue_health
from ml.selectors import dashboard_ml_summary


def _page_needs(perm: str):
    """Anonymous: to the login page; signed in without `perm`: 403 (is_staff is not enough)."""

    def decorate(view):
        return login_required(
            permission_required(perm, raise_exception=True)(view), login_url="admin:login"
        )

    return decorate


@_page_needs("analytics.view_dailymetric")
def dashboard(request):
    data = dashboard_analytics()
    days = data["days_90"]
    context = {
        "data": data,
        "revenue_chart": bar_chart(
            [(d["day"].strftime("%d %b"), d["revenue"]) for d in days],
            chart_id="chart-revenue", title="Revenue per day (90 days)",
        ),
        "orders_chart": bar_chart(
            [(d["day"].strftime("%d %b"), d["orders"]) for d in days],
            chart_id="chart-orders", title="Orders per day (90 days)", color="#6a1b9a",
        ),
        "funnel_chart": funnel_chart(
            [(s["label"], s["orders"]) for s in data["status_funnel"]],
            chart_id="chart-funnel", title="Orders of the last 90 days by status",
        ),
        "ml": dashboard_ml_summary(),
    }  # fmt: skip
    return render(request, "analytics/dashboard.html", context)


@_page_needs("jobs.view_jobrun")
def queues(request):
    health = queue_health()
    for q in health["queues"]:
        q["chart"] = stacked_bar_chart(
            [(b.strftime("%H:00"), (ok, failed)) for b, ok, failed in q["series"]],
            chart_id=f"chart-queue-{q['queue']}", title=f"{q['queue']}: finished runs per hour",
            colors=(GREEN, RED), series=("succeeded", "failed"), width=240, height=36,
            axis=False,
        )  # fmt: skip
    chart = stacked_bar_chart(
        [(b.strftime("%H:00"), (ok, failed)) for b, ok, failed in health["series"]],
        chart_id="chart-queue-throughput", title="Finished runs per hour, all queues (24 h)",
        colors=(GREEN, RED), series=("succeeded", "failed"), label_every=3,
    )  # fmt: skip
    can_operate = request.user.has_perm("jobs.operate_jobs")
    return render(
        request,
        "analytics/queues.html",
        {"health": health, "chart": chart, "can_operate": can_operate, "now": timezone.now()},
    )


def _operated_queue(request, queue: str) -> str:
    if queue not in settings.JOBS_QUEUES:
        raise Http404(f"No queue named {queue!r}.")
    if not request.user.has_perm("jobs.operate_jobs"):
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
    return redirect("analytics:queues")


@require_POST
@staff_member_required
def queue_pause_view(request, queue: str):
    queue = _operated_queue(request, queue)
    queue_pause(queue=queue, user=request.user)
    messages.success(request, f"Queue {queue!r} is paused: runs are accepted, none starts.")
    return redirect("analytics:queues")


@require_POST
@staff_member_required
def queue_resume_view(request, queue: str):
    queue = _operated_queue(request, queue)
    if queue_resume(queue=queue):
        messages.success(request, f"Queue {queue!r} is resumed.")
    else:
        messages.info(request, f"Queue {queue!r} was not paused.")
    return redirect("analytics:queues")
