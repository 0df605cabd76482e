from django.conf import settings
from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from aktina.jobs.models import JobRun
from orders.models import Allocation, Order, OrderItem, OrderStatusChange, Product, Stock, Warehouse
from orders.services import MAX_QUANTITY


class ProductSerializer(serializers.ModelSerializer):
    quantity_available = serializers.IntegerField(
        read_only=True, help_text="Free units in all warehouses together."
    )
    max_orderable = serializers.IntegerField(
        read_only=True,
        help_text="The most one order can get now: an order ships from one warehouse, so this is "
        "the best single warehouse's free stock.",
    )

    class Meta:
        model = Product
        fields = [
            "id",
            "sku",
            "name",
            "unit_price",
            "active",
            "quantity_available",
            "max_orderable",
        ]


class StrictCharField(serializers.CharField):
    """A CharField that takes only JSON strings (DRF's turns 123 or 1.5 into "123")."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    """Only a JSON integer: DRF's takes "2", 2.0 and true as numbers."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """Only JSON true or false: DRF's takes "true", "yes", 1."""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


# --- orders: input --------------------------------------------------------------------------
class OrderLineInputSerializer(serializers.Serializer):
    sku = serializers.CharField(max_length=64)
    quantity = StrictIntegerField(min_value=1, max_value=MAX_QUANTITY)


class OrderCreateSerializer(serializers.Serializer):
    items = OrderLineInputSerializer(
        many=True,
        allow_empty=False,
        help_text="At most ORDER_MAX_LINES lines (100 by default); more is a 400 on `items`.",
    )
    auto_approve = StrictBooleanField(default=False)
    priority = serializers.ChoiceField(
        choices=Order.Priority.choices, default=Order.Priority.NORMAL
    )

    def validate_items(self, items):
        # Only the shape here: the products are looked up once, by the service, whose unknown
        # or retired SKUs come back as 400s in the same `items` field.
        if len(items) > settings.ORDER_MAX_LINES:
            raise serializers.ValidationError(
                f"An order may have at most {settings.ORDER_MAX_LINES} lines."
            )
        return items


class OrderRejectSerializer(serializers.Serializer):
    reason = StrictCharField(max_length=2000)


class OrderCancelSerializer(serializers.Serializer):
    reason = StrictCharField(max_length=2000, required=False, allow_blank=True, default="")


# --- orders: output -------------------------------------------------------------------------
class OrderItemSerializer(serializers.ModelSerializer):
    sku = serializers.CharField(source="product.sku", read_only=True)
    name = serializers.CharField(source="product.name", read_only=True)
    line_total = serializers.DecimalField(max_digits=14, decimal_places=2, read_only=True)

    class Meta:
        model = OrderItem
        fields = ["id", "sku", "name", "quantity", "unit_price", "line_total", "backorder"]


class AllocationSerializer(serializers.ModelSerializer):
    warehouse = serializers.CharField(source="stock.warehouse.code", read_only=True)

    class Meta:
        model = Allocation
        fields = ["id", "stock", "warehouse", "quantity"]


class OrderItemDetailSerializer(OrderItemSerializer):
    allocations = AllocationSerializer(many=True, read_only=True)

    class Meta(OrderItemSerializer.Meta):
        fields = [*OrderItemSerializer.Meta.fields, "allocations"]


class StatusChangeSerializer(serializers.ModelSerializer):
    # Plain strings: the same values as the order's `status` (one enum in the schema is enough).
    from_status = serializers.CharField(read_only=True, help_text="Empty when placed.")
    to_status = serializers.CharField(read_only=True)
    actor = serializers.CharField(
        source="actor.username", read_only=True, default=None, allow_null=True
    )

    class Meta:
        model = OrderStatusChange
        fields = ["from_status", "to_status", "changed_at", "actor", "note"]


class OrderJobRunSerializer(serializers.ModelSerializer):
    job = serializers.CharField(source="job_name")
    status = serializers.CharField(
        help_text="queued, running, succeeded, failed, cancelled or retried."
    )
    last_error = serializers.CharField(help_text="The last failure (staff only; empty otherwise).")

    class Meta:
        model = JobRun
        fields = [
            "id",
            "job",
            "queue",
            "status",
            "attempts",
            "created_at",
            "available_at",
            "started_at",
            "finished_at",
            "last_error",
        ]


class OrderSerializer(serializers.ModelSerializer):
    customer = serializers.CharField(source="customer.username", read_only=True)
    warehouse = serializers.CharField(
        source="warehouse.code", read_only=True, default=None, allow_null=True
    )
    items = OrderItemSerializer(many=True, read_only=True)
    label_url = serializers.SerializerMethodField(
        help_text="The absolute URL of the shipping label (HTML), for the order's owner and "
        "staff; empty before the order has a shipment."
    )

    class Meta:
        model = Order
        fields = [
            "id",
            "reference",
            "customer",
            "status",
            "priority",
            "auto_approve",
            "total_amount",
            "warehouse",
            "carrier",
            "tracking_number",
            "label_url",
            "created_at",
            "updated_at",
            "items",
        ]
        read_only_fields = fields

    def get_label_url(self, order) -> str:
        if not order.tracking_number:
            return ""
        path = reverse("order-label", kwargs={"pk": order.pk})
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path


class OrderDetailSerializer(OrderSerializer):
    items = OrderItemDetailSerializer(many=True, read_only=True)
    approved_by = serializers.CharField(
        source="approved_by.username",
        read_only=True,
        allow_null=True,
        default=None,
        help_text="The username of the manager who approved it; null if approved automatically.",
    )
    timeline = StatusChangeSerializer(source="status_changes", many=True, read_only=True)
    jobs = serializers.SerializerMethodField()

    class Meta(OrderSerializer.Meta):
        fields = [
            *OrderSerializer.Meta.fields,
            "approved_by",
            "approved_at",
            "approval_requested_at",
            "rejection_reason",
            "failure_reason",
            "fulfillment_started_at",
            "shipped_at",
            "completed_at",
            "cancelled_at",
            "timeline",
            "jobs",
        ]
        read_only_fields = fields

    @extend_schema_field(OrderJobRunSerializer(many=True))
    def get_jobs(self, order):
        runs = self.context.get("job_runs", [])
        return OrderJobRunSerializer(runs, many=True).data


# --- warehouses and stock -------------------------------------------------------------------
class WarehouseSerializer(serializers.ModelSerializer):
    staged = serializers.IntegerField(read_only=True, help_text="Units allocated there now.")

    class Meta:
        model = Warehouse
        fields = ["id", "code", "name", "capacity", "staged"]


class StockSerializer(serializers.ModelSerializer):
    sku = serializers.CharField(source="product.sku", read_only=True)
    warehouse = serializers.CharField(source="warehouse.code", read_only=True)
    quantity_available = serializers.IntegerField(read_only=True)

    class Meta:
        model = Stock
        fields = ["id", "sku", "warehouse", "quantity", "quantity_allocated", "quantity_available"]


class StockReceiveSerializer(serializers.Serializer):
    sku = serializers.CharField(max_length=64)
    warehouse = serializers.CharField(max_length=32, help_text="Warehouse code.")
    quantity = StrictIntegerField(
        min_value=1,
        max_value=MAX_QUANTITY,
        help_text="At most STOCK_RECEIVE_MAX units per receipt (100 000 by default).",
    )
    reference = serializers.CharField(
        max_length=200,
        required=False,
        allow_blank=True,
        default="",
        help_text="The delivery's reference (purchase order, delivery note), kept with it.",
    )

    def validate_sku(self, value):
        if not Product.objects.filter(sku=value).exists():
            raise serializers.ValidationError(f"Unknown sku {value!r}.")
        return value

    def validate_warehouse(self, value):
        if not Warehouse.objects.filter(code=value).exists():
            raise serializers.ValidationError(f"Unknown warehouse {value!r}.")
        return value
