"""The failed-job store, as operators use it: find a run, read its errors, retry or cancel it."""

from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.utils.functional import cached_property
from django.utils.html import format_html

from aktina.jobs.composition import batch_cancel
from aktina.jobs.lifecycle import RunNotChangeable, run_cancel, run_retry
from aktina.jobs.models import JobAttempt, JobBatch, JobRun
from aktina.jobs.selectors import ledger_distinct, ledger_row_count

OPERATE = "jobs.operate_jobs"
# Below this many runs an exact COUNT(*) is cheap; above it the unfiltered list shows
# PostgreSQL's estimate.
ESTIMATE_COUNT_ABOVE = 100_000


class IndexedValuesFilter(admin.AllValuesFieldListFilter):
    """The list of values without `SELECT DISTINCT` over every run (see `ledger_distinct`)."""

    def __init__(self, field, request, params, model, model_admin, field_path):
        super().__init__(field, request, params, model, model_admin, field_path)
        self.lookup_choices = ledger_distinct(field.name)


class LedgerPaginator(Paginator):
    """The unfiltered ledger's size from the planner's statistics, not a COUNT(*) of a
    million rows per page view; filtered lists (status, queue, search) count exactly."""

    @cached_property
    def count(self):
        if not self.object_list.query.where:
            rows = ledger_row_count(estimate_above=ESTIMATE_COUNT_ABOVE)
            if rows is not None:
                return rows
        return super().count


class OperationsOnly:
    # Job arguments can carry customer data: only operations staff see the ledger at all.
    def has_module_permission(self, request):
        return request.user.is_active and request.user.has_perm(OPERATE)

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.has_perm(OPERATE)

    def has_change_permission(self, request, obj=None):
        return False  # runs change only through retry/cancel, never by editing fields

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return request.user.is_active and request.user.has_perm(OPERATE)

    def has_operate_permission(self, request):
        return request.user.is_active and request.user.has_perm(OPERATE)


class JobAttemptInline(admin.TabularInline):
    model = JobAttempt
    extra = 0
    can_delete = False
    fields = ["number", "outcome", "started_at", "finished_at", "worker", "error", "traceback"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        # Attempts are part of the run: whoever may operate runs reads their errors.
        return request.user.is_active and request.user.has_perm(OPERATE)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(JobRun)
class JobRunAdmin(OperationsOnly, admin.ModelAdmin):
    list_display = [
        "id",
        "job_name",
        "queue",
        "status",
        "attempts_display",
        "created_at",
        "available_at",
        "finished_at",
        "error_summary",
    ]
    # Not `date_hierarchy`: its MIN/MAX and DISTINCT-dates queries read the whole ledger on
    # every page view; the date filter's links (today, past 7 days, ...) cost no query.
    list_filter = [
        "status",
        ("queue", IndexedValuesFilter),
        ("job_name", IndexedValuesFilter),
        ("created_at", admin.DateFieldListFilter),
    ]
    search_fields = ["=id", "unique_key", "job_name", "payload", "last_error"]
    show_full_result_count = False  # a COUNT(*) over a million rows per page view is not free
    paginator = LedgerPaginator
    inlines = [JobAttemptInline]
    actions = ["retry_runs", "cancel_runs"]
    readonly_fields = [
        "job_name",
        "queue",
        "status",
        "payload",
        "attempts",
        "tries",
        "timeout",
        "backoff",
        "retry_until",
        "unique_key",
        "unique_active",
        "unique_until",
        "batch",
        "chain",
        "chain_catch",
        "created_at",
        "available_at",
        "delivered_until",
        "started_at",
        "finished_at",
        "lease_expires_at",
        "worker",
        "wait_display",
        "run_display",
        "last_error",
    ]
    fieldsets = [
        (None, {"fields": ["job_name", "queue", "status", "payload", "last_error"]}),
        ("Attempts", {"fields": ["attempts", "tries", "timeout", "backoff", "retry_until"]}),
        (
            "Timeline",
            {
                "fields": [
                    "created_at",
                    "available_at",
                    "delivered_until",
                    "started_at",
                    "finished_at",
                    "lease_expires_at",
                    "worker",
                    "wait_display",
                    "run_display",
                ]
            },
        ),
        (
            "Uniqueness, chain and batch",
            {
                "classes": ["collapse"],
                "fields": [
                    "unique_key",
                    "unique_active",
                    "unique_until",
                    "chain",
                    "chain_catch",
                    "batch",
                ],
            },
        ),
    ]

    @admin.display(description="attempts")
    def attempts_display(self, run: JobRun) -> str:
        return f"{run.attempts}/{run.tries}"

    @admin.display(description="error")
    def error_summary(self, run: JobRun) -> str:
        return (run.last_error.splitlines() or [""])[0][:120]

    @admin.display(description="wait")
    def wait_display(self, run: JobRun) -> str:
        return "—" if run.wait_seconds is None else f"{run.wait_seconds:.3f} s"

    @admin.display(description="run time")
    def run_display(self, run: JobRun) -> str:
        return "—" if run.run_seconds is None else f"{run.run_seconds:.3f} s"

    @admin.action(description="Retry selected failed or cancelled runs", permissions=["operate"])
    def retry_runs(self, request, queryset):
        self._apply(request, queryset, run_retry, "retried")

    @admin.action(description="Cancel selected queued runs", permissions=["operate"])
    def cancel_runs(self, request, queryset):
        self._apply(request, queryset, run_cancel, "cancelled")

    def _apply(self, request, queryset, service, verb: str) -> None:
        done, refused = 0, []
        for run in queryset:
            try:
                service(run=run)
                done += 1
            except RunNotChangeable as exc:
                refused.append(str(exc))
        if done:
            self.message_user(request, f"{done} run(s) {verb}.", messages.SUCCESS)
        for reason in refused[:10]:
            self.message_user(request, reason, messages.WARNING)


@admin.register(JobBatch)
class JobBatchAdmin(OperationsOnly, admin.ModelAdmin):
    list_display = [
        "id",
        "name",
        "total",
        "pending",
        "failed",
        "progress_display",
        "created_at",
        "finished_at",
        "cancelled_at",
    ]
    search_fields = ["name", "=id"]
    actions = ["cancel_batches"]
    readonly_fields = [
        "name",
        "total",
        "pending",
        "failed",
        "then_spec",
        "catch_spec",
        "finally_spec",
        "created_at",
        "finished_at",
        "cancelled_at",
    ]

    @admin.display(description="progress")
    def progress_display(self, batch: JobBatch) -> str:
        return format_html("{}%", batch.progress)

    @admin.action(description="Cancel selected batches", permissions=["operate"])
    def cancel_batches(self, request, queryset):
        for batch in queryset:
            batch_cancel(batch=batch)
        self.message_user(request, "Batches cancelled.", messages.SUCCESS)
