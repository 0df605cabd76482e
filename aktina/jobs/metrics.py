"""GET /metrics: the ledger in Prometheus' text format, for a staff token or METRICS_TOKEN.

Every value is read from the ledger at scrape time (no in-process state, so any web process
answers for the whole site) with bounded queries: per-queue counts read only covering indexes
(as the queue page does), timings come from the newest SAMPLE succeeded and FAILED_SAMPLE
failed runs of the last hour per queue, and the recovery counters from one small table. Wait
and run times are therefore *gauge* histograms of that recent window, not growing counters.
"""

from __future__ import annotations

import datetime as dt
import hmac
from collections import defaultdict

from django.conf import settings
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeHistogramMetricFamily,
    GaugeMetricFamily,
)

from aktina.core.tokens import token_user
from aktina.jobs.clock import db_now
from aktina.jobs.counters import counters_read
from aktina.jobs.models import JobRun
from aktina.jobs.processes import queues_served_alive, queues_unserved
from aktina.jobs.selectors import JOB_LABEL, QUEUE, queues_active_counts

Status = JobRun.Status
# Who may scrape besides the METRICS_TOKEN bearer: the job ledger's readers (operations).
METRICS_PERMISSION = "jobs.view_jobrun"
SAMPLE = 500
FAILED_SAMPLE = 100
WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
RUN_BUCKETS = (0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 600)


# Exempt: a GET-only endpoint changes nothing, and a POST should read 405, not a CSRF page.
@csrf_exempt
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    allowed = _authorised(request)
    if allowed is None:
        response = HttpResponse("Authentication required.\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    if not allowed:
        return HttpResponse(
            "Needs the jobs.view_jobrun permission.\n", status=403, content_type="text/plain"
        )
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LedgerCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


def _authorised(request: HttpRequest) -> bool | None:
    """True for the METRICS_TOKEN bearer or a user with METRICS_PERMISSION (token or session),
    False for another user, None for nobody."""
    scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
    credential = credential.strip()
    scheme = scheme.lower()
    if scheme == "bearer" and credential:
        secret = settings.METRICS_TOKEN
        return True if secret and hmac.compare_digest(credential, secret) else None
    if scheme == "token" and credential:
        user = token_user(credential)
        return None if user is None else user.has_perm(METRICS_PERMISSION)
    if request.user.is_authenticated:
        return request.user.has_perm(METRICS_PERMISSION)
    return None


class LedgerCollector:
    def collect(self):
        now = timezone.now()
        yield from _run_counts(now)
        yield from _recent_runs(now)
        yield from _recovery_counters()
        yield from _clusters()


def _run_counts(now: dt.datetime):
    runs = GaugeMetricFamily(
        "aktina_job_runs",
        "Runs in the ledger now, by queue and state (queued = due and waiting).",
        labels=["queue", "status"],
    )
    depth = GaugeMetricFamily(
        "aktina_job_queue_depth", "Runs due and waiting for a worker.", labels=["queue"]
    )
    oldest = GaugeMetricFamily(
        "aktina_job_oldest_wait_seconds",
        "How long the oldest due run has been waiting (0 when none waits).",
        labels=["queue"],
    )
    finished = GaugeMetricFamily(
        "aktina_job_runs_finished_last_hour",
        "Runs that ended in the last hour, by queue and outcome.",
        labels=["queue", "status"],
    )
    # Both statements read only indexes ending in `queue` (see aktina.jobs.selectors).
    active = queues_active_counts(now=now)
    # An hour, not a day: a day of finished runs is a seventh of a week-long ledger (1 s at 1M
    # runs on SQLite), an hour a 168th; Prometheus keeps the history.
    ended = {
        (row["q"], row["status"]): row["n"]
        for row in JobRun.objects.filter(
            status__in=[Status.SUCCEEDED, Status.FAILED],
            finished_at__gte=now - dt.timedelta(hours=1),
        )
        .values("status", q=QUEUE)
        .annotate(n=Count("status"))
        .order_by()
    }
    for queue in settings.JOBS_QUEUES:
        a = active.get(queue, {})
        for status in ("queued", "delayed", "running", "failed"):
            runs.add_metric([queue, status], a.get(status, 0))
        depth.add_metric([queue], a.get("queued", 0))
        since = a.get("oldest_waiting_at")
        oldest.add_metric([queue], max(0.0, (now - since).total_seconds()) if since else 0.0)
        for status in (Status.SUCCEEDED, Status.FAILED):
            finished.add_metric([queue, status], ended.get((queue, status), 0))
    yield from (runs, depth, oldest, finished)


def _recent_runs(now: dt.datetime):
    """Histograms, attempts and failures per queue and job from the last hour's newest runs."""
    since = now - dt.timedelta(hours=1)
    waits: dict[tuple, list[float]] = defaultdict(list)
    durations: dict[tuple, list[float]] = defaultdict(list)
    attempts: dict[tuple, int] = defaultdict(int)
    failures: dict[tuple, int] = defaultdict(int)
    for queue in settings.JOBS_QUEUES:
        for status, limit in ((Status.SUCCEEDED, SAMPLE), (Status.FAILED, FAILED_SAMPLE)):
            for job, tried, available_at, started_at, finished_at in _newest_finished(
                queue, status, since, limit
            ):
                key = (queue, job)
                waits[key].append(max(0.0, (started_at - available_at).total_seconds()))
                durations[key].append(max(0.0, (finished_at - started_at).total_seconds()))
                attempts[key] += tried
                failures[key] += status == Status.FAILED
    yield _histogram(
        "aktina_job_wait_seconds",
        f"Due-to-start wait of the newest {SAMPLE} runs per queue that ended in the last hour.",
        waits,
        WAIT_BUCKETS,
    )
    yield _histogram(
        "aktina_job_run_seconds",
        f"Run time of the newest {SAMPLE} runs per queue that ended in the last hour.",
        durations,
        RUN_BUCKETS,
    )
    tried = GaugeMetricFamily(
        "aktina_job_attempts_last_hour",
        "Attempts spent by the sampled runs that ended in the last hour.",
        labels=["queue", "job"],
    )
    failed = GaugeMetricFamily(
        "aktina_job_failures_last_hour",
        "Sampled runs that ended failed in the last hour.",
        labels=["queue", "job"],
    )
    for key in sorted(attempts):
        tried.add_metric(list(key), attempts[key])
        failed.add_metric(list(key), failures[key])
    yield tried
    yield failed


def _newest_finished(queue: str, status: str, since: dt.datetime, limit: int):
    """The newest `limit` runs of one queue and outcome that ended since `since`.

    One status and `finished_at` descending walk the index (status, finished_at, queue)
    backwards and stop after `limit` rows; the queue is compared as CAST(queue) so that the
    planner does not take (queue, status, ...) instead, which reads every succeeded run of the
    queue (2 s per queue at 1M runs on SQLite).
    """
    return (
        JobRun.objects.annotate(q=QUEUE)
        .filter(q=queue, status=status, finished_at__gte=since, started_at__isnull=False)
        .order_by("-finished_at")
        .values_list(JOB_LABEL, "attempts", "available_at", "started_at", "finished_at")[:limit]
    )


def _histogram(name: str, documentation: str, samples: dict, bounds: tuple):
    family = GaugeHistogramMetricFamily(name, documentation, labels=["queue", "job"])
    for key in sorted(samples):
        values = samples[key]
        buckets = [(str(b), sum(1 for v in values if v <= b)) for b in bounds]
        buckets.append(("+Inf", len(values)))
        family.add_metric(list(key), buckets, gsum_value=sum(values))
    return family


def _clusters():
    served = GaugeMetricFamily(
        "aktina_job_queue_live_clusters",
        "Live clusters (fresh heartbeat) serving the queue.",
        labels=["queue"],
    )
    unserved = GaugeMetricFamily(
        "aktina_job_queue_unserved",
        "1 when the queue has due runs and no live cluster serves it.",
        labels=["queue"],
    )
    now = db_now()  # heartbeats are on the database's clock
    counts = queues_served_alive(now=now)
    nobody = set(queues_unserved(now=now, served=counts))
    for queue, n in counts.items():
        served.add_metric([queue], n)
        unserved.add_metric([queue], 1 if queue in nobody else 0)
    yield served
    yield unserved


def _recovery_counters():
    sweeper = CounterMetricFamily(
        "aktina_job_sweeper_actions",
        "Sweeper actions since the ledger was created (expired leases, promoted and re-sent "
        "runs, pruned runs), summed over every process and host.",
        labels=["action"],
    )
    sentinel = CounterMetricFamily(
        "aktina_job_sentinel_actions",
        "Sentinel actions (pool resets, runs of dead workers handed back, runs of dead "
        "clusters rescued), per cluster.",
        labels=["action", "cluster"],
    )
    for name, label, value in counters_read():
        group, _, action = name.partition("_")
        if group == "sweeper":
            sweeper.add_metric([action], value)
        elif group == "sentinel":
            sentinel.add_metric([action, label], value)
    yield sweeper
    yield sentinel
