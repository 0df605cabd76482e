from __future__ import annotations

from django.core.management.base import CommandError
from django.utils import timezone

from aktina.core.commands import (
    OneLineErrorsCommand,
    OneLineParser,
    parse_duration,
    positive_int,
)
from aktina.jobs.lifecycle import RunNotChangeable, run_cancel, run_retry, runs_retry_failed
from aktina.jobs.models import JobRun
from aktina.jobs.selectors import queue_stats

Status = JobRun.Status


class Command(OneLineErrorsCommand):
    help = "Inspect and recover background jobs: list, retry, cancel, forget, flush, stats."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True, parser_class=OneLineParser)
        ls = sub.add_parser("list", help="recent runs")
        ls.add_argument("--failed", action="store_true")
        ls.add_argument("--queue")
        ls.add_argument("--limit", type=positive_int, default=50)
        retry = sub.add_parser("retry", help="retry failed runs")
        target = retry.add_mutually_exclusive_group(required=True)
        target.add_argument("id", nargs="?", type=int)
        target.add_argument("--queue")
        target.add_argument("--all-failed", action="store_true")
        cancel = sub.add_parser("cancel", help="cancel a queued run")
        cancel.add_argument("id", type=int)
        forget = sub.add_parser("forget", help="delete a finished run from the ledger")
        forget.add_argument("id", type=int)
        flush = sub.add_parser("flush", help="delete finished runs older than a duration")
        flush.add_argument("--older-than", required=True, type=parse_duration)
        flush.add_argument("--include-failed", action="store_true")
        sub.add_parser("stats", help="per-queue health")

    def handle(self, *args, action, **options):
        getattr(self, f"do_{action}")(**options)

    def do_list(self, *, failed, queue, limit, **_):
        runs = JobRun.objects.order_by("-id")
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

    def do_retry(self, *, id, queue, all_failed, **_):
        if id is not None:
            run = self._run(id)
            self._change(run_retry, run)
            self.stdout.write(f"run {id} queued again")
            return
        count = runs_retry_failed(queue=queue)
        self.stdout.write(f"{count} failed run(s) queued again")

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
            [Status.FAILED] if include_failed else []
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
        self.stdout.write("  ".join(f"{c:>13}" for c in cols))
        for row in queue_stats():
            cells = ["—" if row[c] is None else str(row[c]) for c in cols]
            self.stdout.write("  ".join(f"{c:>13}" for c in cells))

    def _run(self, run_id: int) -> JobRun:
        try:
            return JobRun.objects.get(pk=run_id)
        except JobRun.DoesNotExist:
            raise CommandError(f"no run with id {run_id}") from None

    def _change(self, service, run):
        try:
            service(run=run)
        except RunNotChangeable as exc:
            raise CommandError(str(exc)) from exc
