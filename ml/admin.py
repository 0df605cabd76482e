from django.contrib import admin, messages

from aktina.core.admin import ReadOnlyAdminMixin
from ml.models import PredictionRun, SegmentProfile


class SegmentProfileInline(admin.TabularInline):
    model = SegmentProfile
    fields = ["name", "size", "recency_days", "frequency", "monetary"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(PredictionRun)
class PredictionRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "status",
        "only",
        "freq",
        "horizon",
        "started_at",
        "duration",
        "order_lines",
        "customers",
        "products",
        "current_segments",
        "current_forecasts",
    ]
    list_filter = ["status", "only", "freq", "current_segments", "current_forecasts"]
    date_hierarchy = "started_at"
    readonly_fields = [f.name for f in PredictionRun._meta.fields]
    inlines = [SegmentProfileInline]
    actions = ["refresh_now"]

    # Runs are written by the refresh alone: viewable, never edited or added by hand (deleting
    # the current run would empty what readers see; old rows are pruned by refreshes).

    def has_refresh_permission(self, request):
        return request.user.has_perm("ml.refresh_predictions")

    @admin.action(
        description="Refresh now (with the first selected run's scope, frequency and horizon)",
        permissions=["refresh"],
    )
    def refresh_now(self, request, queryset):
        from ml.jobs import RefreshMLPredictions

        template = queryset.order_by("-started_at", "-id").first()
        job_run = RefreshMLPredictions.dispatch(
            only=template.only or None, freq=template.freq, horizon=template.horizon
        )
        self.message_user(
            request,
            f"ML refresh queued as job run #{job_run.pk} on {job_run.queue}; "
            "the new run appears here when it starts.",
            messages.SUCCESS,
        )
