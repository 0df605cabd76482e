"""Catalogue, warehouses, stock and orders.

Stock follows the Saleor model: one `Stock` row per (product, warehouse) with on-hand and
allocated quantities, and one `Allocation` per (order line, stock row). The invariants live in
the database as constraints, so no code path (admin, shell, a buggy job) can break them.
"""

from __future__ import annotations

import secrets
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone


class Product(models.Model):
    sku = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    unit_price = models.DecimalField(max_digits=12, decimal_places=2)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["sku"]
        constraints = [
            models.CheckConstraint(
                condition=Q(unit_price__gte=0), name="product_unit_price_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.sku} — {self.name}"


class Warehouse(models.Model):
    code = models.CharField(max_length=32, unique=True)
    name = models.CharField(max_length=200)
    capacity = models.PositiveIntegerField(
        help_text="Outbound staging space, in units: the most units it can have allocated."
    )

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} — {self.name}"


class Stock(models.Model):
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="stocks")
    warehouse = models.ForeignKey(Warehouse, on_delete=models.PROTECT, related_name="stocks")
    quantity = models.IntegerField(default=0, help_text="Units on hand.")
    quantity_allocated = models.IntegerField(default=0, help_text="Units promised to orders.")

    class Meta:
        ordering = ["product_id", "warehouse_id"]
        permissions = [("receive_stock", "Can receive stock into a warehouse")]
        constraints = [
            models.UniqueConstraint(fields=["product", "warehouse"], name="stock_unique_per_pair"),
            models.CheckConstraint(
                condition=Q(quantity__gte=0), name="stock_quantity_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(quantity_allocated__gte=0), name="stock_allocated_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(quantity_allocated__lte=F("quantity")),
                name="stock_allocated_within_on_hand",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.product.sku} @ {self.warehouse.code}"

    @property
    def quantity_available(self) -> int:
        return self.quantity - self.quantity_allocated


class StockAdjustment(models.Model):
    """A change of on-hand units with who made it and why: a receipt (units arrived, with the
    delivery's reference) or a correction (a count, damage, loss)."""

    class Kind(models.TextChoices):
        COUNT = "count", "Count / correction"
        RECEIPT = "receipt", "Receipt"

    stock = models.ForeignKey(Stock, on_delete=models.CASCADE, related_name="adjustments")
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.COUNT)
    delta = models.IntegerField(help_text="Units added (positive) or removed (negative).")
    reason = models.TextField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.delta:+d} on {self.stock_id}: {self.reason[:40]}"


def _new_reference() -> str:
    # Short, unambiguous, speakable on the phone: no 0/O or 1/I.
    alphabet = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
    body = "".join(secrets.choice(alphabet) for _ in range(8))
    return f"ORD-{body[:4]}-{body[4:]}"


class Order(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        FULFILLING = "fulfilling", "Fulfilling"
        INVENTORY_SHORTAGE = "inventory_shortage", "Inventory shortage"
        FULFILLMENT_FAILED = "fulfillment_failed", "Fulfilment failed"
        SHIPPED = "shipped", "Shipped"
        COMPLETED = "completed", "Completed"
        CANCELLED = "cancelled", "Cancelled"

    class Priority(models.TextChoices):
        NORMAL = "normal", "Normal"
        URGENT = "urgent", "Urgent"

    reference = models.CharField(max_length=20, unique=True, default=_new_reference, editable=False)
    customer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="orders"
    )
    status = models.CharField(max_length=24, choices=Status.choices, default=Status.PENDING)
    priority = models.CharField(max_length=8, choices=Priority.choices, default=Priority.NORMAL)
    auto_approve = models.BooleanField(default=False)
    total_amount = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))
    warehouse = models.ForeignKey(
        Warehouse, null=True, blank=True, on_delete=models.PROTECT, related_name="orders"
    )
    idempotency_key = models.CharField(max_length=100, null=True, blank=True)
    approval_requested_at = models.DateTimeField(null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="approved_orders",
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    rejection_reason = models.TextField(blank=True)
    fulfillment_started_at = models.DateTimeField(null=True, blank=True)
    failure_reason = models.TextField(blank=True)
    carrier = models.CharField(max_length=40, blank=True)
    tracking_number = models.CharField(max_length=64, blank=True)
    label_url = models.CharField(max_length=500, blank=True)
    shipped_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    # A default rather than auto_now_add: imported and seeded history keeps its own dates.
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [
            ("approve_order", "Can approve or reject orders (and place pre-approved ones)"),
            ("place_urgent_order", "Can place urgent orders"),
            ("cancel_fulfilling_order", "Can cancel an order that is being fulfilled"),
            ("view_all_orders", "Can view every customer's orders (not only their own)"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(total_amount__gte=0), name="order_total_not_negative"
            ),
            models.UniqueConstraint(
                fields=["customer", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="order_idempotency_key_unique_per_customer",
            ),
        ]
        indexes = [models.Index(fields=["status", "created_at"], name="order_status_created")]

    def __str__(self) -> str:
        return self.reference


class OrderItem(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="order_items")
    quantity = models.PositiveIntegerField()
    unit_price = models.DecimalField(
        max_digits=12, decimal_places=2, help_text="The product's price when the order was placed."
    )
    backorder = models.BooleanField(
        default=False,
        help_text="More units than the best warehouse could promise when the order was placed.",
    )

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(quantity__gt=0), name="order_item_quantity_positive"
            ),
            models.CheckConstraint(
                condition=Q(unit_price__gte=0), name="order_item_price_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.product_id}"

    @property
    def line_total(self) -> Decimal:
        return self.unit_price * self.quantity


class Allocation(models.Model):
    order_item = models.ForeignKey(OrderItem, on_delete=models.CASCADE, related_name="allocations")
    stock = models.ForeignKey(Stock, on_delete=models.PROTECT, related_name="allocations")
    quantity = models.PositiveIntegerField()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["order_item", "stock"], name="allocation_unique_per_pair"
            ),
            models.CheckConstraint(
                condition=Q(quantity__gt=0), name="allocation_quantity_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} of line {self.order_item_id} from stock {self.stock_id}"


class OrderStatusChange(models.Model):
    """One row per status change: the order's timeline, written by the service that changed it."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="status_changes")
    from_status = models.CharField(max_length=24, choices=Order.Status.choices, blank=True)
    to_status = models.CharField(max_length=24, choices=Order.Status.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.TextField(blank=True)
    changed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["changed_at", "id"]

    def __str__(self) -> str:
        return f"{self.order_id}: {self.from_status or '-'} -> {self.to_status}"


class CarrierShipment(models.Model):
    """Shipments as a carrier sees them: `LocalCarrier` records its voids here."""

    carrier = models.CharField(max_length=40)
    tracking_number = models.CharField(max_length=64, unique=True)
    label_url = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    voided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.carrier} {self.tracking_number}"


class ImportedLine(models.Model):
    """The natural key of one order-history line already imported (``import_orders``), so a
    file imported again, or a file overlapping an earlier one, adds only the lines not seen."""

    key = models.CharField(max_length=64, unique=True, help_text="sha256 of the line's fields.")
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="+")

    def __str__(self) -> str:
        return f"{self.key[:12]}… -> order {self.order_id}"
