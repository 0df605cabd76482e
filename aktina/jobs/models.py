"""The job ledger: one row per dispatched job, the source of truth for its state.

The table is also django-q2's queue (aktina.jobs.broker.LedgerBroker): a message is a run id
read from these rows, so whatever a cluster does with it (die, redeliver), the rows decide what
runs, when, and how often.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q


class JobBatch(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200, blank=True)
    total = models.PositiveIntegerField(default=0)
    pending = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    # Serialised job specs of the callbacks (see `aktina.jobs.specs`).
    then_spec = models.JSONField(null=True, blank=True)
    catch_spec = models.JSONField(null=True, blank=True)
    finally_spec = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "job batches"

    def __str__(self) -> str:
        return self.name or str(self.id)

    @property
    def processed(self) -> int:
        return self.total - self.pending

    @property
    def progress(self) -> int:
        """Per cent of member runs that have ended (succeeded, failed or cancelled)."""
        return 100 if self.total == 0 else round(100 * self.processed / self.total)

    @property
    def cancelled(self) -> bool:
        return self.cancelled_at is not None


class JobRun(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"
        # Failed or cancelled, then retried by an operator as a new run (`retries`).
        RETRIED = "retried", "Retried"

    ACTIVE = (Status.QUEUED, Status.RUNNING)
    # Ended badly: what failure rates and "last failure" count, retried or not.
    FAILURES = (Status.FAILED, Status.RETRIED)

    job_name = models.CharField(max_length=200, db_index=True)
    # A django-q2 task's function path (`math.sqrt`) for runs of DjangoQTask, else NULL: what
    # the console shows, searches and counts instead of the class (aktina.jobs.rawtasks).
    task_function = models.CharField(max_length=200, null=True, blank=True)
    queue = models.CharField(max_length=64)
    # Higher first among due runs of the same cluster (django.tasks maps -100..100 onto it).
    priority = models.SmallIntegerField(default=0, db_default=0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    payload = models.JSONField(default=dict, help_text="Arguments; model instances as references.")
    attempts = models.PositiveIntegerField(default=0, help_text="Attempts started so far.")
    tries = models.PositiveIntegerField(default=1)
    timeout = models.PositiveIntegerField(default=60)
    backoff = models.JSONField(default=list)
    retry_until = models.DateTimeField(null=True, blank=True)
    unique_key = models.CharField(max_length=255, null=True, blank=True)
    unique_active = models.BooleanField(default=False)
    unique_until = models.DateTimeField(null=True, blank=True)
    unique_until_processing = models.BooleanField(default=False)
    chain = models.JSONField(default=list, blank=True, help_text="Links to dispatch after success.")
    chain_catch = models.JSONField(null=True, blank=True)
    batch = models.ForeignKey(
        JobBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    created_at = models.DateTimeField()
    available_at = models.DateTimeField()
    # Handed to a cluster's in-memory queue and not yet claimed: no cluster takes it again
    # before this time, and any cluster may after it (the one holding it may have died).
    delivered_until = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=120, blank=True)
    last_error = models.TextField(blank=True)
    # Lineage: the failed or cancelled run an operator retried as this one.
    retry_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="retries"
    )
    # What a Django @task function returned (JSON); Job classes return nothing.
    return_value = models.JSONField(null=True, blank=True)
    # The cluster process that claimed the run (aktina.jobs.processes): while its heartbeat is
    # fresh the run is its; once stale, any live cluster hands the run back.
    holder = models.ForeignKey(
        "JobProcess",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        db_constraint=False,
        related_name="+",
    )
    # An operator asked to stop this running run (`jobs terminate`): who, for the record.
    terminate_requested_by = models.CharField(max_length=150, blank=True, default="")

    class Meta:
        ordering = ["-id"]
        permissions = [("operate_jobs", "Can retry, cancel and delete job runs")]
        constraints = [
            # At most one active run per unique key, enforced by the database on every host.
            models.UniqueConstraint(
                fields=["unique_key"],
                condition=Q(unique_active=True),
                name="jobrun_one_active_per_unique_key",
            ),
        ]
        indexes = [
            # Sweeper and dashboards: due / stale / expired runs per status. `queue` last makes
            # the two indexes cover the queue page's per-queue counts (index-only scans): the
            # failed runs are scattered over the whole table and a day's finished runs are
            # ~1/7 of it, so reading their rows made the page's cost follow the ledger's size.
            models.Index(
                fields=["status", "available_at", "queue"], name="jobrun_status_available_q"
            ),
            models.Index(fields=["status", "lease_expires_at"], name="jobrun_status_lease"),
            models.Index(fields=["queue", "status", "created_at"], name="jobrun_queue_status"),
            models.Index(
                fields=["status", "finished_at", "queue"], name="jobrun_status_finished_q"
            ),
            # The broker's dequeue: due runs in delivery order, only queued rows in the index.
            models.Index(
                models.F("priority").desc(),
                "available_at",
                "id",
                name="jobrun_dequeue",
                condition=Q(status="queued"),
            ),
            # Per-job-class metrics: each (status, job) pair's last day is one range of this
            # index, and `started_at` makes the run-time sample an index-only read too.
            models.Index(
                fields=["status", "job_name", "finished_at", "started_at"],
                name="jobrun_status_job_finished",
            ),
            # django-q2 tasks by function: their distinct functions (a loose index scan) and
            # each function's finished runs per status, for raw task rows only.
            models.Index(
                fields=["task_function", "status", "finished_at", "started_at"],
                name="jobrun_task_function",
                condition=Q(task_function__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.task_function or self.job_name} #{self.pk} ({self.status})"

    @property
    def wait_seconds(self) -> float | None:
        if self.started_at is None:
            return None
        return max(0.0, (self.started_at - self.available_at).total_seconds())

    @property
    def run_seconds(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return max(0.0, (self.finished_at - self.started_at).total_seconds())


class JobAttempt(models.Model):
    """One attempt that did not end the run well: its error stays visible to operators."""

    class Outcome(models.TextChoices):
        ERROR = "error", "Error (will retry)"
        FAILED = "failed", "Failed"
        TIMED_OUT = "timed_out", "Timed out or worker lost"

    run = models.ForeignKey(JobRun, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField()
    worker = models.CharField(max_length=120, blank=True)
    error = models.TextField(blank=True)
    # The exception's dotted class path, for TaskResult.errors (aktina.jobs.tasks_backend);
    # a database default so that bulk SQL writers (benchmarks) need not know the column.
    error_class = models.CharField(max_length=255, blank=True, db_default="")
    traceback = models.TextField(blank=True)

    class Meta:
        ordering = ["run_id", "id"]

    def __str__(self) -> str:
        return f"attempt {self.number} of run {self.run_id}: {self.outcome}"


class RateLimitWindow(models.Model):
    """The start times inside the current window of one rate-limit key (a sliding log)."""

    key = models.CharField(max_length=200, primary_key=True)
    starts = models.JSONField(default=list)

    def __str__(self) -> str:
        return self.key


class JobLock(models.Model):
    """A `WithoutOverlapping` lock; it expires with its holder's lease."""

    key = models.CharField(max_length=200, primary_key=True)
    run = models.ForeignKey(JobRun, null=True, on_delete=models.SET_NULL, related_name="+")
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.key


class JobRunTag(models.Model):
    """A searchable label of a run (`order:1234`): from its model arguments and `Job.tags()`.

    A table rather than a JSON or array column: one B-tree on (tag, run) finds a tag's runs
    newest first on SQLite and PostgreSQL alike, where a JSON scan reads the whole ledger.
    """

    run = models.ForeignKey(JobRun, on_delete=models.CASCADE, related_name="tags")
    tag = models.CharField(max_length=100)

    class Meta:
        constraints = [
            # Also the search index: a tag's runs, by run id.
            models.UniqueConstraint(fields=["tag", "run"], name="jobruntag_one_per_run"),
        ]

    def __str__(self) -> str:
        return self.tag


class QueuePause(models.Model):
    """A paused queue: its runs keep being dispatched, none starts until the row is gone."""

    queue = models.CharField(max_length=64, primary_key=True)
    paused_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Who, when a command paused it (no user): the OS user and host.
    paused_by_name = models.CharField(max_length=150, blank=True)
    paused_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.queue} paused"


class JobCounter(models.Model):
    """A monotonically growing count of recovery actions (sweeper, sentinel), shared by every
    process and host so that /metrics can report them: `name` and a `label` (cluster or "")."""

    name = models.CharField(max_length=64)
    label = models.CharField(max_length=120, blank=True, default="")
    value = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["name", "label"], name="jobcounter_name_label"),
        ]

    def __str__(self) -> str:
        return f"{self.name}{{{self.label}}} = {self.value}"


class JobProcess(models.Model):
    """A live qcluster process (its sentinel: `cluster`) or one of its workers (`worker`), kept
    fresh by a heartbeat on the database's clock; runs it claimed point at it (`holder`)."""

    class Kind(models.TextChoices):
        CLUSTER = "cluster", "Cluster"
        WORKER = "worker", "Worker"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    cluster = models.CharField(max_length=64)
    host = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    boot = models.CharField(max_length=32)
    queues = models.JSONField(default=list)
    started_at = models.DateTimeField()
    last_seen = models.DateTimeField(db_index=True)
    # A cluster's runs in its workers' hands at its last heartbeat: if the cluster dies, these
    # count an attempt when handed back; the rest of what it held never started (refunded).
    running = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["cluster", "host", "pid"]

    def __str__(self) -> str:
        return f"{self.kind} {self.cluster} {self.host}:{self.pid}"
