"""The failed-job store, as operators use it: find a run, read its errors, retry or cancel it.

A queued or running run is never deleted here (issue 18, defect 1): deleting it would strand
whatever it was going to do (an order left `fulfilling` with no label job, forever). The admin
offers cancel instead, on a confirmation page that says what the cancel leaves undone.
"""

import re

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_POST

from aktina.jobs.composition import batch_cancel
from aktina.jobs.console.runs import run_arguments, run_cancel_consequences
from aktina.jobs.lifecycle import RunNotChangeable, run_cancel, run_terminate
from aktina.jobs.models import JobAttempt, JobBatch, JobRun
from aktina.jobs.retrying import run_retry, runs_retry
from aktina.jobs.selectors import (
    error_summary,
    failed_exception_classes,
    ledger_distinct,
    ledger_row_count,
    run_label,
)
from aktina.jobs.tagging import runs_tagged

OPERATE = "jobs.operate_jobs"

# Below this many runs an exact COUNT(*) is cheap; above it the unfiltered list shows
# PostgreSQL's estimate.
ESTIMATE_COUNT_ABOVE = 100_000


class IndexedValuesFilter(admin.AllValuesFieldListFilter):
    """The list of values without `SELECT DISTINCT` over every run (see `ledger_distinct`)."""

    def __init__(self, field, request, params, model, model_admin, field_path):
        super().__init__(field, request, params, model, model_admin, field_path)
        self.lookup_choices = ledger_distinct(field.name)


class ExceptionClassFilter(admin.SimpleListFilter):
    """Failed runs by the class of their last error (`CarrierUnavailable`, `JobTimedOut`)."""

    title = "exception class"
    parameter_name = "exception"

    def lookups(self, request, model_admin):
        return [(name, name) for name in failed_exception_classes()]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(
                status=JobRun.Status.FAILED, last_error__startswith=f"{self.value()}:"
            )
        return queryset


# `order:1234`, `product:SKU-0006`: a search term of this shape is a tag.
TAG_TERM = re.compile(r"^[\w.-]+:\S+$")


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
        if obj is not None and getattr(obj, "status", None) in JobRun.ACTIVE:
            return False  # a queued or running run is cancelled, never deleted (see above)
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
    # Fits 1 400 px: short timestamps, the error cut to one short line (full text on the page).
    list_display = [
        "id",
        "job_display",
        "queue",
        "status",
        "attempts_display",
        "created_display",
        "available_display",
        "finished_display",
        "error_display",
    ]
    # The failed list is read for its errors: the one-line summary comes right after the job.
    failed_list_display = [
        "id",
        "job_display",
        "error_display",
        "queue",
        "attempts_display",
        "finished_display",
    ]
    # Not `date_hierarchy`: its MIN/MAX and DISTINCT-dates queries read the whole ledger on
    # every page view; the date filter's links (today, past 7 days, ...) cost no query.
    list_filter = [
        "status",
        ("queue", IndexedValuesFilter),
        ("job_name", IndexedValuesFilter),
        ("task_function", IndexedValuesFilter),
        ExceptionClassFilter,
        ("created_at", admin.DateFieldListFilter),
    ]
    # A term shaped like a tag (`order:1234`) searches the tag index only; see get_search_results.
    search_fields = ["=id", "unique_key", "job_name", "task_function", "payload", "last_error"]
    show_full_result_count = False  # a COUNT(*) over a million rows per page view is not free
    paginator = LedgerPaginator
    inlines = [JobAttemptInline]
    actions = ["retry_runs", "cancel_runs", "delete_ended_runs"]
    change_form_template = "admin/jobs/jobrun/change_form.html"
    readonly_fields = [
        "job_name",
        "task_function",
        "arguments_display",
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
        "tags_display",
        "retry_of_display",
        "retries_display",
    ]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "job_name",
                    "task_function",
                    "queue",
                    "status",
                    "tags_display",
                    "arguments_display",
                    "last_error",
                ]
            },
        ),
        ("Lineage", {"fields": ["retry_of_display", "retries_display"]}),
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

    @admin.display(description="job", ordering="job_name")
    def job_display(self, run: JobRun) -> str:
        # A django-q2 task by its function (`math.sqrt`), a job by its class's name.
        return format_html(
            '<span title="{}">{}</span>', run.task_function or run.job_name, run_label(run)
        )

    @admin.display(description="error")
    def error_display(self, run: JobRun) -> str:
        # One line cut to the column's width (the list fits 1 400 px); hover for more, the full
        # text and each attempt's traceback are on the run's page.
        return format_html(
            '<span title="{}" style="display:inline-block;max-width:20em;white-space:nowrap;'
            'overflow:hidden;text-overflow:ellipsis;vertical-align:bottom">{}</span>',
            error_summary(run.last_error, limit=300),
            error_summary(run.last_error),
        )

    @admin.display(description="created", ordering="created_at")
    def created_display(self, run: JobRun) -> str:
        return _short_time(run.created_at)

    @admin.display(description="available", ordering="available_at")
    def available_display(self, run: JobRun) -> str:
        return _short_time(run.available_at)

    @admin.display(description="finished", ordering="finished_at")
    def finished_display(self, run: JobRun) -> str:
        return _short_time(run.finished_at)

    @admin.display(description="arguments")
    def arguments_display(self, run: JobRun) -> str:
        # Decoded and redacted: a django-q2 task's function and arguments, never its pickle.
        args = run_arguments(run)
        if args["kind"] == "job":
            return format_html("<pre>{}</pre>", args["payload"])
        if args["error"]:
            return format_html("<em>django-q2 task package {}</em>", args["error"])
        return format_html(
            "<code>{}</code><br>args <code>{}</code><br>kwargs <code>{}</code>",
            args["function"], args["args"], args["kwargs"],
        )  # fmt: skip

    @admin.display(description="tags")
    def tags_display(self, run: JobRun) -> str:
        return ", ".join(run.tags.values_list("tag", flat=True)) or "—"

    @admin.display(description="retry of")
    def retry_of_display(self, run: JobRun) -> str:
        if run.retry_of_id is None:
            return "—"
        return format_html('<a href="{}">run #{}</a>', self._url(run.retry_of_id), run.retry_of_id)

    @admin.display(description="retried as")
    def retries_display(self, run: JobRun) -> str:
        retries = run.retries.order_by("pk").values_list("pk", "status")
        if not retries:
            return "—"
        return format_html_join(
            ", ", '<a href="{}">run #{}</a> ({})', ((self._url(pk), pk, st) for pk, st in retries)
        )

    def _url(self, pk: int) -> str:
        return reverse("admin:jobs_jobrun_change", args=[pk])

    @admin.display(description="wait")
    def wait_display(self, run: JobRun) -> str:
        return "—" if run.wait_seconds is None else f"{run.wait_seconds:.3f} s"

    @admin.display(description="run time")
    def run_display(self, run: JobRun) -> str:
        return "—" if run.run_seconds is None else f"{run.run_seconds:.3f} s"

    def get_list_display(self, request):
        if request.GET.get("status__exact") == JobRun.Status.FAILED:
            return self.failed_list_display
        return self.list_display

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if TAG_TERM.match(term):
            # The tag index answers at any ledger size; OR-ing the payload and error scans in
            # would read every run.
            return queryset.filter(pk__in=runs_tagged(term).values("pk")), False
        return super().get_search_results(request, queryset, search_term)

    @admin.action(
        description="Retry selected failed or cancelled runs (each as a new run)",
        permissions=["operate"],
    )
    def retry_runs(self, request, queryset):
        # Filter by job and exception class, then "select all": a bulk retry by filter.
        retried, refused = runs_retry(runs=queryset)
        if retried:
            self.message_user(request, f"{retried} run(s) retried.", messages.SUCCESS)
        for reason in refused[:10]:
            self.message_user(request, reason, messages.WARNING)

    @admin.action(description="Cancel selected queued runs", permissions=["operate"])
    def cancel_runs(self, request, queryset):
        self._apply(request, queryset, run_cancel, "cancelled")

    @admin.action(description="Delete selected ended runs (never queued or running ones)",
                  permissions=["delete"])  # fmt: skip
    def delete_ended_runs(self, request, queryset):
        active = list(queryset.filter(status__in=JobRun.ACTIVE).values_list("pk", "status")[:10])
        deleted = queryset.exclude(status__in=JobRun.ACTIVE).delete()[1].get("jobs.JobRun", 0)
        if deleted:
            self.message_user(request, f"{deleted} ended run(s) deleted.", messages.SUCCESS)
        for pk, status in active:
            self.message_user(
                request,
                f"Run #{pk} is {status}: not deleted (deleting it would strand its work). "
                "Cancel it instead.",
                messages.WARNING,
            )

    def get_actions(self, request):
        # Django's "Delete selected" deletes whatever is selected, queued and running runs too.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:pk>/cancel/", view(self.cancel_view), name="jobs_jobrun_cancel"),
            path("<int:pk>/retry/", view(self.retry_view), name="jobs_jobrun_retry"),
            path("<int:pk>/terminate/", view(self.terminate_view), name="jobs_jobrun_terminate"),
            *super().get_urls(),
        ]

    def cancel_view(self, request, pk: int):
        """GET: what the cancel leaves undone; POST: cancel."""
        run = get_object_or_404(JobRun, pk=pk)
        if not self.has_operate_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            try:
                run_cancel(run=run)
                self.message_user(request, f"Run #{pk} cancelled.", messages.SUCCESS)
            except RunNotChangeable as exc:
                self.message_user(request, str(exc), messages.WARNING)
            return redirect("admin:jobs_jobrun_change", pk)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Cancel run #{run.pk}?",
            "run": run,
            "label": run_label(run),
            "consequences": run_cancel_consequences(run),
            "cancellable": run.status == JobRun.Status.QUEUED,
        }
        return TemplateResponse(request, "admin/jobs/jobrun/cancel_confirmation.html", context)

    def terminate_view(self, request, pk: int):
        """GET: what terminating does; POST: ask the holding cluster to stop the run."""
        run = get_object_or_404(JobRun, pk=pk)
        if not self.has_operate_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            try:
                run_terminate(run=run, by=request.user.get_username())
                self.message_user(
                    request,
                    f"Run #{pk}: termination asked; its cluster stops it within a guard cycle "
                    "and it ends cancelled.",
                    messages.SUCCESS,
                )
            except RunNotChangeable as exc:
                self.message_user(request, str(exc), messages.WARNING)
            return redirect("admin:jobs_jobrun_change", pk)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Terminate run #{run.pk}?",
            "run": run,
            "label": run_label(run),
            "consequences": run_cancel_consequences(run),
            "terminable": run.status == JobRun.Status.RUNNING and run.holder_id is not None,
        }
        return TemplateResponse(request, "admin/jobs/jobrun/terminate_confirmation.html", context)

    def retry_view(self, request, pk: int):
        run = get_object_or_404(JobRun, pk=pk)
        if not self.has_operate_permission(request):
            raise PermissionDenied
        return require_POST(self._retry)(request, run)

    def _retry(self, request, run: JobRun):
        try:
            new = run_retry(run=run)
        except RunNotChangeable as exc:
            self.message_user(request, str(exc), messages.WARNING)
            return redirect("admin:jobs_jobrun_change", run.pk)
        self.message_user(
            request, f"Run #{run.pk} queued again as run #{new.pk}.", messages.SUCCESS
        )
        return redirect("admin:jobs_jobrun_change", new.pk)

    def render_change_form(self, request, context, *args, obj=None, **kwargs):
        context["can_operate"] = self.has_operate_permission(request)
        return super().render_change_form(request, context, *args, obj=obj, **kwargs)

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


def _short_time(value) -> str:
    return "—" if value is None else timezone.localtime(value).strftime("%m-%d %H:%M:%S")


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
