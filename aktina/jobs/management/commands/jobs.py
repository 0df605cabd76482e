from __future__ import annotations

import datetime as dt
import getpass
import os
import socket
import sys

from django.conf import settings
from django.core.management.base import CommandError
from django.utils import timezone

from aktina.core.commands import (
    OneLineErrorsCommand,
    OneLineParser,
    parse_duration,
    positive_int,
)
from aktina.jobs.lifecycle import RunNotChangeable, run_cancel, run_terminate
from aktina.jobs.models import JobRun
from aktina.jobs.pausing import queue_pause, queue_resume
from aktina.jobs.processes import clusters_alive, queues_served_alive
from aktina.jobs.queues import cluster_for
from aktina.jobs.retrying import run_retry, runs_retry_matching
from aktina.jobs.selectors import queue_stats
from aktina.jobs.tagging import runs_tagged

Status = JobRun.Status


def _operator() -> str:
    """Who ran the command, for the record: the OS user and host."""
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        user = f"uid {os.getuid()}"
    return f"{user}@{socket.gethostname()}"


def queue_name(text: str) -> str:
    """An argparse type: a configured queue, else one line naming the configured ones."""
    if text not in settings.JOBS_QUEUES:
        raise CommandError(f"unknown queue {text!r}; configured: {', '.join(settings.JOBS_QUEUES)}")
    return text


def past_duration(text: str) -> dt.timedelta:
    """A duration that still ends after year 1 when counted back from now."""
    duration = parse_duration(text)
    try:
        timezone.now() - duration
    except OverflowError:
        raise CommandError(f"{text!r} is too long: it reaches back before year 1") from None
    return duration


class Command(OneLineErrorsCommand):
    help = (
        "Inspect and recover background jobs: list, retry, pause, resume, cancel, terminate, "
        "forget, flush, stats, clusters."
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True, parser_class=OneLineParser)
        ls = sub.add_parser("list", help="recent runs")
        ls.add_argument("--failed", action="store_true")
        ls.add_argument("--queue", type=queue_name)
        ls.add_argument("--tag", help="runs with this tag, e.g. order:1234")
        ls.add_argument("--limit", type=positive_int, default=50)
        retry = sub.add_parser(
            "retry", help="retry one run, or the failed runs matching every filter given"
        )
        retry.add_argument("id", nargs="?", type=int)
        retry.add_argument("--queue", type=queue_name)
        retry.add_argument("--job", help="job class, e.g. orders.jobs.GenerateShippingLabelJob")
        retry.add_argument("--exception", help="exception class name, e.g. CarrierUnavailable")
        retry.add_argument("--all-failed", action="store_true")
        pause = sub.add_parser("pause", help="stop starting runs of a queue (dispatch goes on)")
        pause.add_argument("queue", type=queue_name)
        resume = sub.add_parser("resume", help="start a paused queue's runs again")
        resume.add_argument("queue", type=queue_name)
        cancel = sub.add_parser("cancel", help="cancel a queued run")
        cancel.add_argument("id", type=int)
        terminate = sub.add_parser(
            "terminate", help="stop a running run: its worker is stopped, the run cancelled"
        )
        terminate.add_argument("id", type=int)
        forget = sub.add_parser("forget", help="delete a finished run from the ledger")
        forget.add_argument("id", type=int)
        flush = sub.add_parser("flush", help="delete finished runs older than a duration")
        flush.add_argument("--older-than", required=True, type=past_duration)
        flush.add_argument("--include-failed", action="store_true")
        sub.add_parser("stats", help="per-queue health")
        sub.add_parser("clusters", help="live clusters: host, pid, queues, heartbeat, held runs")

    def handle(self, *args, action, **options):
        try:
            getattr(self, f"do_{action}")(**options)
            self.stdout.flush()
        except BrokenPipeError:
            # `jobs stats | head`: the reader has what it wanted. Point stdout at /dev/null so
            # that the interpreter's own flush at exit does not fail again.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())

    def do_list(self, *, failed, queue, tag, limit, **_):
        runs = runs_tagged(tag) if tag else JobRun.objects.order_by("-id")
        if failed:
            runs = runs.filter(status=Status.FAILED)
        if queue:
            runs = runs.filter(queue=queue)
        self.stdout.write(f"{'id':>8}  {'status':9}  {'queue':16}  {'tries':5}  job / last error")
        for run in runs[:limit]:
            error = (run.last_error.splitlines() or [""])[0][:60]
            self.stdout.write(
                f"{run.pk:>8}  {run.status:9}  {run.queue:16}  {run.attempts}/{run.tries:<3}  "
                f"{run.job_name.rsplit('.', 1)[-1]} {error}"
            )

    def do_retry(self, *, id, queue, job, exception, all_failed, **_):
        filters = {"queue": queue, "job_name": job, "exception": exception}
        if (id is not None) == (all_failed or any(filters.values())):
            raise CommandError(
                "give a run id, or --all-failed, or filters (--queue/--job/--exception)"
            )
        if id is not None:
            new = self._change(run_retry, self._run(id))
            self.stdout.write(f"run {id} queued again as run {new.pk}")
            return
        count, refused = runs_retry_matching(**filters)
        self.stdout.write(f"{count} failed run(s) queued again")
        for reason in refused:
            self.stderr.write(f"not retried: {reason}")

    def do_pause(self, *, queue, **_):
        pause = queue_pause(queue=queue)
        self.stdout.write(
            f"queue {queue} paused since {pause.paused_at:%Y-%m-%d %H:%M:%S} "
            f"by {pause.paused_by or pause.paused_by_name}; runs are still accepted"
        )

    def do_resume(self, *, queue, **_):
        was_paused = queue_resume(queue=queue)
        self.stdout.write(
            f"queue {queue} resumed" if was_paused else f"queue {queue} was not paused"
        )

    def do_terminate(self, *, id, **_):
        run = self._run(id)
        try:
            run_terminate(run=run, by=_operator())
        except RunNotChangeable as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"run {id}: termination asked; the cluster holding it stops it within a few seconds"
        )

    def do_clusters(self, **_):
        rows = [
            [
                c["name"],
                c["host"],
                str(c["pid"]),
                ",".join(c["queues"]),
                f"{c['started']:%Y-%m-%d %H:%M:%S}",
                f"{c['last_seen']:%H:%M:%S}",
                str(c["workers"]),
                str(c["held_runs"]),
            ]
            for c in clusters_alive()
        ]
        head = ["name", "host", "pid", "queues", "started", "last_seen", "workers", "held_runs"]
        self._table(head, rows)
        if not rows:
            self.stdout.write("(no live cluster)")

    def _table(self, head: list[str], rows: list[list[str]]) -> None:
        """Columns as wide as their widest cell: long queue names do not shift the others."""
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
        for row in [head, *rows]:
            self.stdout.write("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))

    def do_cancel(self, *, id, **_):
        self._change(run_cancel, self._run(id))
        self.stdout.write(f"run {id} cancelled")

    def do_forget(self, *, id, **_):
        run = self._run(id)
        if run.status in JobRun.ACTIVE:
            raise CommandError(f"run {id} is {run.status}; cancel it or let it finish first")
        run.delete()
        self.stdout.write(f"run {id} forgotten")

    def do_flush(self, *, older_than, include_failed, **_):
        statuses = [Status.SUCCEEDED, Status.CANCELLED] + (
            list(JobRun.FAILURES) if include_failed else []
        )
        cutoff = timezone.now() - older_than
        deleted = JobRun.objects.filter(status__in=statuses, finished_at__lt=cutoff).delete()[1]
        self.stdout.write(f"{deleted.get('jobs.JobRun', 0)} run(s) deleted")

    def do_stats(self, **_):
        cols = [
            "queue",
            "pending",
            "running",
            "delayed",
            "failed",
            "throughput_1h",
            "wait_p50_ms",
            "wait_p95_ms",
            "run_p50_ms",
            "run_p95_ms",
        ]
        stats = queue_stats()
        rows = [["—" if row[c] is None else str(row[c]) for c in cols] for row in stats]
        self._table(cols, rows)
        # A queue with due runs and no live cluster serving it: nothing will run them.
        served = queues_served_alive()
        for row in stats:
            if row["pending"] and not served.get(row["queue"]):
                self.stdout.write(
                    f"UNSERVED: queue {row['queue']} has {row['pending']} due run(s) and no live "
                    f"cluster serves it; start one: manage.py qcluster --name "
                    f"{cluster_for(row['queue'])}"
                )

    def _run(self, run_id: int) -> JobRun:
        try:
            return JobRun.objects.get(pk=run_id)
        except JobRun.DoesNotExist:
            raise CommandError(f"no run with id {run_id}") from None

    def _change(self, service, run):
        try:
            return service(run=run)
        except RunNotChangeable as exc:
            raise CommandError(str(exc)) from exc
