from django.contrib import admin
from django.utils import timezone

from aktina.jobs.console.models import MonitoredTag, QueueWaitIncident

OPERATE = "jobs.operate_jobs"


@admin.register(QueueWaitIncident)
class QueueWaitIncidentAdmin(admin.ModelAdmin):
    # Incidents are opened and closed by the queue-wait check only.
    list_display = ["queue", "started_at", "ended_at", "threshold_seconds", "peak_wait_seconds"]
    list_filter = ["queue"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(MonitoredTag)
class MonitoredTagAdmin(admin.ModelAdmin):
    """Pinned tags; the page that shows their runs is /dashboard/tags/. Pinning and unpinning
    need the operations permission, as on that page."""

    list_display = ["tag", "added_by", "added_at"]
    search_fields = ["tag"]
    fields = ["tag"]

    def _operator(self, request) -> bool:
        return request.user.is_active and request.user.has_perm(OPERATE)

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff

    def has_add_permission(self, request):
        return self._operator(request)

    def has_change_permission(self, request, obj=None):
        return False  # a tag is pinned or not; change means unpin and pin another

    def has_delete_permission(self, request, obj=None):
        return self._operator(request)

    def save_model(self, request, obj, form, change):
        obj.added_by = request.user
        obj.added_at = timezone.now()
        super().save_model(request, obj, form, change)
