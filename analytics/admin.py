from django.contrib import admin

from aktina.core.admin import ReadOnlyAdminMixin
from analytics.models import (
    CustomerMetric,
    DailyMetric,
    DailyStatusMetric,
    ProductMetric,
)


class ReadOnlyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Metrics are derived data: rebuilt by `manage.py rebuild_analytics`, never edited by hand."""


@admin.register(DailyMetric)
class DailyMetricAdmin(ReadOnlyAdmin):
    list_display = ["day", "orders", "orders_booked", "revenue", "average_order_value"]
    date_hierarchy = "day"


@admin.register(DailyStatusMetric)
class DailyStatusMetricAdmin(ReadOnlyAdmin):
    list_display = ["day", "status", "orders"]
    list_filter = ["status"]


@admin.register(CustomerMetric)
class CustomerMetricAdmin(ReadOnlyAdmin):
    list_display = ["customer", "orders", "revenue", "first_order_at", "last_order_at"]
    list_select_related = ["customer"]
    ordering = ["-revenue"]


@admin.register(ProductMetric)
class ProductMetricAdmin(ReadOnlyAdmin):
    list_display = ["product", "units", "orders", "revenue"]
    list_select_related = ["product"]
    ordering = ["-revenue"]
