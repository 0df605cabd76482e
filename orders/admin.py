"""The admin never writes workflow state. Orders, lines, stock quantities and allocations are
read-only once they exist; every change is an admin action that calls the same service the API
calls. The add forms stay: a new order starts the workflow, a new stock row starts at zero.
"""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html_join

from aktina.core.admin import ReadOnlyAdminMixin
from orders.models import (
    Allocation,
    Order,
    OrderItem,
    OrderStatusChange,
    Product,
    Stock,
    StockAdjustment,
    Warehouse,
)
from orders.services import (
    MAX_QUANTITY,
    InvalidTransition,
    order_approve,
    order_cancel,
    order_complete,
    order_fulfilment_retry,
    order_privileges_check,
    order_register_created,
    order_reject,
    stock_adjust,
    stock_receive,
)


class ReasonForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=2000)


class ReceiveForm(forms.Form):
    quantity = forms.IntegerField(min_value=1, max_value=MAX_QUANTITY, help_text="Units arriving.")


class AdjustForm(forms.Form):
    quantity = forms.IntegerField(
        min_value=0, max_value=MAX_QUANTITY, help_text="Units on hand after the count."
    )
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=2000)


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
            refused.append(f"{obj}: {_reason(exc)}")
    if done:
        modeladmin.message_user(request, f"{done} done.", messages.SUCCESS)
    for text in refused:
        modeladmin.message_user(request, text, messages.WARNING)


def _reason(exc: Exception) -> str:
    # A ValidationError's str() is a Python dict or list; its messages are the sentences.
    if isinstance(exc, ValidationError):
        return " ".join(exc.messages)
    return str(exc)


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
    # Quantities move only through services: receive, adjust (with a reason), ship.
    readonly_fields = ["quantity", "quantity_allocated"]

    actions = ["receive", "adjust"]

    def get_readonly_fields(self, request, obj=None):
        # The pair is the row's identity once it holds units or allocations.
        return ["product", "warehouse", *self.readonly_fields] if obj else self.readonly_fields

    @admin.display(description="available")
    def available(self, stock: Stock) -> int:
        return stock.quantity_available

    def has_delete_permission(self, request, obj=None) -> bool:
        # Deleting a row would drop its units with no reason kept, and its adjustments (the
        # audit trail) with it; *Adjust the count* to 0 says why.
        return False

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
                sku=stock.product.sku,
                warehouse=stock.warehouse,
                quantity=data["quantity"],
                received_by=request.user,
            ),
        )

    @admin.action(description="Adjust the count (with a reason)…", permissions=["receive"])
    def adjust(self, request, queryset):
        return _with_form(
            self,
            request,
            queryset.select_related("product", "warehouse"),
            AdjustForm,
            "Adjust stock count",
            lambda stock, data: stock_adjust(
                stock=stock, quantity=data["quantity"], reason=data["reason"], actor=request.user
            ),
        )


@admin.register(StockAdjustment)
class StockAdjustmentAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["created_at", "stock", "delta", "reason", "actor"]
    list_select_related = ["stock__product", "stock__warehouse", "actor"]
    search_fields = ["stock__product__sku", "reason"]

    # The log of what stock_adjust did: written by the service only.


class OrderItemInline(admin.TabularInline):
    model = OrderItem
    extra = 0
    raw_id_fields = ["product"]
    readonly_fields = ["allocated"]

    # Lines are typed on the add form only; a placed order's lines are its contract.
    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return self.readonly_fields
        return ["product", "quantity", "unit_price", *self.readonly_fields]

    def has_add_permission(self, request, obj=None) -> bool:
        return obj is None and super().has_add_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return obj is None and super().has_delete_permission(request, obj)

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
    # Fits 1 400 px beside the admin's sidebar: the warehouse by its code, a short timestamp.
    list_display = [
        "reference",
        "customer",
        "status",
        "priority",
        "total_amount",
        "warehouse_display",
        "created_display",
    ]
    list_filter = ["status", "priority", "warehouse", "created_at"]
    search_fields = ["reference", "customer__username", "customer__email", "tracking_number"]
    list_select_related = ["customer", "warehouse"]
    raw_id_fields = ["customer"]
    # What the add form asks for; everything else is the workflow's.
    add_fields = ["customer", "priority", "auto_approve"]
    date_hierarchy = "created_at"
    inlines = [OrderItemInline, StatusChangeInline]
    actions = ["approve", "reject", "cancel", "retry_fulfilment", "complete"]

    @admin.display(description="warehouse", ordering="warehouse__code")
    def warehouse_display(self, order: Order) -> str:
        return order.warehouse.code if order.warehouse_id else "—"

    @admin.display(description="created", ordering="created_at")
    def created_display(self, order: Order) -> str:
        return timezone.localtime(order.created_at).strftime("%Y-%m-%d %H:%M")

    def get_fields(self, request, obj=None):
        if obj is None:
            return self.add_fields
        return [f.name for f in Order._meta.fields if f.name != "id"]

    def get_readonly_fields(self, request, obj=None):
        # Every field of a placed order: status, warehouse, shipment, timestamps, approval,
        # totals. Changes are the actions below, which call the services.
        return [] if obj is None else self.get_fields(request, obj)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        if obj is not None:
            return form

        class AddForm(form):
            def clean(self):
                data = super().clean()
                try:
                    order_privileges_check(user=request.user, fields=data)
                except PermissionDenied as exc:
                    raise ValidationError(str(exc)) from exc
                return data

        return AddForm

    def save_model(self, request, obj, form, change) -> None:
        if change:
            return  # nothing on a placed order's form is editable (see get_readonly_fields)
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change) -> None:
        super().save_related(request, form, formsets, change)
        if not change:
            # The observer: an order added here starts the workflow like any other.
            order_register_created(order=form.instance, actor=request.user)

    def has_change_permission(self, request, obj=None) -> bool:
        # A placed order's page is read-only (no Save buttons); the actions, which ask
        # without an object, still need the change permission.
        return obj is None and super().has_change_permission(request)

    def has_delete_permission(self, request, obj=None) -> bool:
        # Deleting a placed order would drop its allocations without releasing the stock:
        # an order ends by cancel, which releases it.
        return obj is None and super().has_delete_permission(request)

    def get_actions(self, request):
        # The same for "Delete selected": orders end by cancel.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

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


class AllocationInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Allocation
    extra = 0
    fields = ["stock", "quantity"]
    readonly_fields = fields


@admin.register(OrderItem)
class OrderItemAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "order", "product", "quantity", "unit_price"]
    search_fields = ["order__reference", "product__sku"]
    list_select_related = ["order", "product"]
    inlines = [AllocationInline]


@admin.register(Allocation)
class AllocationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "order_item", "stock", "quantity"]
    search_fields = ["order_item__order__reference", "stock__product__sku"]
    list_select_related = ["order_item", "stock"]
