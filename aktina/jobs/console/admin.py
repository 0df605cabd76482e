from django.contrib import admin
from django.utils import timezone
from django_q.models import Failure, OrmQ, Success

from aktina.jobs.console.models import MonitoredTag, QueueWaitIncident

# django-q2's result stores stay empty (the ledger keeps every outcome) and its queue table is
# not our queue (the ledger is the broker): their pages only mislead. Schedules stay: django-q2's
# Schedule admin is where operators manage them. Done here, not in aktina.jobs (which comes
# before django_q so that its qcluster wins): this app comes after django_q, whose pages are
# registered by now.
for _model in (Failure, Success, OrmQ):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)

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
