from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.template.response import TemplateResponse
from django.utils.html import format_html_join

from orders.models import Allocation, Order, OrderItem, OrderStatusChange, Product, Stock, Warehouse
from orders.services import (
    MAX_QUANTITY,
    InvalidTransition,
    order_approve,
    order_cancel,
    order_complete,
    order_fulfilment_retry,
    order_register_created,
    order_reject,
    stock_receive,
)


class ReasonForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=2000)


class ReceiveForm(forms.Form):
    quantity = forms.IntegerField(min_value=1, max_value=MAX_QUANTITY, help_text="Units arriving.")


def _with_form(modeladmin, request, queryset, form_class, title, apply):
    """An intermediate page: ask for `form_class`, then call `apply(obj, cleaned_data)`."""
    if "apply" in request.POST:
        form = form_class(request.POST)
        if form.is_valid():
            _each(modeladmin, request, queryset, lambda obj: apply(obj, form.cleaned_data))
            return None
    else:
        form = form_class()
    return TemplateResponse(
        request,
        "admin/orders/action_form.html",
        {
            **modeladmin.admin_site.each_context(request),
            "title": title,
            "form": form,
            "objects": list(queryset),
            "action": request.POST.get("action"),
            "opts": modeladmin.model._meta,
        },
    )


def _each(modeladmin, request, queryset, apply) -> None:
    """Apply a service to every selected row; report successes and refusals, never a 500."""
    done, refused = 0, []
    for obj in queryset:
        try:
            apply(obj)
            done += 1
        except (InvalidTransition, ValidationError, PermissionDenied) as exc:
            refused.append(f"{obj}: {exc}")
    if done:
        modeladmin.message_user(request, f"{done} done.", messages.SUCCESS)
    for text in refused:
        modeladmin.message_user(request, text, messages.WARNING)


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["sku", "name", "unit_price", "active", "created_at"]
    list_filter = ["active"]
    search_fields = ["sku", "name"]


@admin.register(Warehouse)
class WarehouseAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "capacity"]
    search_fields = ["code", "name"]


@admin.register(Stock)
class StockAdmin(admin.ModelAdmin):
    list_display = ["product", "warehouse", "quantity", "quantity_allocated", "available"]
    list_filter = ["warehouse"]
    search_fields = ["product__sku", "product__name", "warehouse__code"]
    list_select_related = ["product", "warehouse"]
    raw_id_fields = ["product"]

    actions = ["receive"]

    @admin.display(description="available")
    def available(self, stock: Stock) -> int:
        return stock.quantity_available

    def has_receive_permission(self, request) -> bool:
        return request.user.has_perm("orders.receive_stock")

    @admin.action(description="Receive stock…", permissions=["receive"])
    def receive(self, request, queryset):
        return _with_form(
            self,
            request,
            queryset.select_related("product", "warehouse"),
            ReceiveForm,
            "Receive stock",
            lambda stock, data: stock_receive(
                sku=stock.product.sku, warehouse=stock.warehouse, quantity=data["quantity"]
            ),
        )


class OrderItemInline(admin.TabularInline):
    model = OrderItem
    extra = 0
    raw_id_fields = ["product"]
    readonly_fields = ["allocated"]

    # Allocations hang off lines, not the order: shown read-only on each line.
    @admin.display(description="allocations")
    def allocated(self, item: OrderItem) -> str:
        if item.pk is None:
            return "-"
        rows = [
            (a.quantity, a.stock.warehouse.code)
            for a in item.allocations.select_related("stock__warehouse")
        ]
        return format_html_join(", ", "{} from {}", rows) or "-"


class StatusChangeInline(admin.TabularInline):
    model = OrderStatusChange
    extra = 0
    can_delete = False
    fields = ["changed_at", "from_status", "to_status", "actor", "note"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = [
        "reference",
        "customer",
        "status",
        "priority",
        "total_amount",
        "warehouse",
        "created_at",
    ]
    list_filter = ["status", "priority", "warehouse", "created_at"]
    search_fields = ["reference", "customer__username", "customer__email", "tracking_number"]
    list_select_related = ["customer", "warehouse"]
    raw_id_fields = ["customer", "approved_by"]
    readonly_fields = ["reference", "total_amount", "created_at", "updated_at"]
    date_hierarchy = "created_at"
    inlines = [OrderItemInline, StatusChangeInline]
    actions = ["approve", "reject", "cancel", "retry_fulfilment", "complete"]

    def save_related(self, request, form, formsets, change) -> None:
        super().save_related(request, form, formsets, change)
        if not change:
            # The observer: an order added here starts the workflow like any other.
            order_register_created(order=form.instance, actor=request.user)

    def has_approve_permission(self, request) -> bool:
        return request.user.has_perm("orders.approve_order")

    @admin.action(description="Approve selected orders", permissions=["approve"])
    def approve(self, request, queryset):
        _each(self, request, queryset, lambda o: order_approve(order=o, approved_by=request.user))

    @admin.action(description="Reject selected orders…", permissions=["approve"])
    def reject(self, request, queryset):
        return _with_form(
            self,
            request,
            queryset,
            ReasonForm,
            "Reject orders",
            lambda o, data: order_reject(order=o, reason=data["reason"], rejected_by=request.user),
        )

    @admin.action(description="Cancel selected orders (releases stock)", permissions=["change"])
    def cancel(self, request, queryset):
        _each(self, request, queryset, lambda o: order_cancel(order=o, cancelled_by=request.user))

    @admin.action(description="Retry fulfilment", permissions=["change"])
    def retry_fulfilment(self, request, queryset):
        _each(
            self, request, queryset, lambda o: order_fulfilment_retry(order=o, actor=request.user)
        )

    @admin.action(description="Mark delivered (completed)", permissions=["change"])
    def complete(self, request, queryset):
        _each(self, request, queryset, lambda o: order_complete(order=o, actor=request.user))


class AllocationInline(admin.TabularInline):
    model = Allocation
    extra = 0
    raw_id_fields = ["stock"]


@admin.register(OrderItem)
class OrderItemAdmin(admin.ModelAdmin):
    list_display = ["id", "order", "product", "quantity", "unit_price"]
    search_fields = ["order__reference", "product__sku"]
    list_select_related = ["order", "product"]
    raw_id_fields = ["order", "product"]
    inlines = [AllocationInline]


@admin.register(Allocation)
class AllocationAdmin(admin.ModelAdmin):
    list_display = ["id", "order_item", "stock", "quantity"]
    search_fields = ["order_item__order__reference", "stock__product__sku"]
    list_select_related = ["order_item", "stock"]
    raw_id_fields = ["order_item", "stock"]
