from django.contrib import admin

from aktina.notifications.models import Notification


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["created_at", "recipient", "kind", "subject", "order", "read_at", "emailed_at"]
    list_filter = ["kind", ("read_at", admin.EmptyFieldListFilter)]
    search_fields = ["subject", "recipient__username", "order__reference"]
    list_select_related = ["recipient", "order"]
    raw_id_fields = ["recipient", "order"]
    date_hierarchy = "created_at"
