"""Metrics kept current one order at a time.

`OrderContribution` is the ledger of what each order currently adds to the aggregates; an
update applies the difference between it and the order's present state, so a re-run adds
nothing and a status change moves the order's contribution instead of adding it twice.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models

ZERO = Decimal("0.00")


class OrderContribution(models.Model):
    # Not a foreign key: the contribution must outlive a deleted order until it is removed.
    order_id = models.BigIntegerField(primary_key=True)
    customer_id = models.BigIntegerField()
    day = models.DateField()
    placed_at = models.DateTimeField()
    status = models.CharField(max_length=24)
    booked = models.BooleanField(help_text="Counts in revenue (not cancelled or rejected).")
    revenue = models.DecimalField(max_digits=14, decimal_places=2, default=ZERO)
    lead_time_seconds = models.BigIntegerField(null=True, blank=True)
    # [[product_id, units, revenue-as-string], ...] merged per product.
    lines = models.JSONField(default=list)

    class Meta:
        indexes = [
            # first/last order of one customer: two index probes, whatever the history size.
            models.Index(fields=["customer_id", "booked", "placed_at"], name="an_contrib_customer"),
            # Lead-time percentiles over a recent window.
            models.Index(fields=["day"], name="an_contrib_day"),
        ]

    def __str__(self) -> str:
        return f"order {self.order_id} ({self.status})"


class DailyMetric(models.Model):
    day = models.DateField(primary_key=True)
    orders = models.IntegerField(default=0, help_text="Orders placed that day, any status.")
    orders_booked = models.IntegerField(default=0, help_text="Of those, not cancelled/rejected.")
    revenue = models.DecimalField(
        max_digits=16, decimal_places=2, default=ZERO, help_text="Booked: not cancelled/rejected."
    )
    revenue_shipped = models.DecimalField(
        max_digits=16,
        decimal_places=2,
        default=ZERO,
        help_text="Of the booked revenue, the orders that shipped (shipped or completed).",
    )
    lead_time_orders = models.IntegerField(default=0)
    lead_time_total_seconds = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["day"]

    def __str__(self) -> str:
        return str(self.day)

    @property
    def average_order_value(self) -> Decimal:
        return (self.revenue / self.orders_booked).quantize(ZERO) if self.orders_booked else ZERO


class DailyStatusMetric(models.Model):
    day = models.DateField()
    status = models.CharField(max_length=24)
    orders = models.IntegerField(default=0)

    class Meta:
        ordering = ["day", "status"]
        constraints = [
            models.UniqueConstraint(fields=["day", "status"], name="an_daily_status_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.status}: {self.orders}"


class CustomerMetric(models.Model):
    customer = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        primary_key=True,
        on_delete=models.CASCADE,
        db_constraint=False,
        related_name="+",
    )
    orders = models.IntegerField(default=0)
    revenue = models.DecimalField(max_digits=16, decimal_places=2, default=ZERO)
    first_order_at = models.DateTimeField(null=True)
    last_order_at = models.DateTimeField(null=True)

    class Meta:
        indexes = [models.Index(fields=["-revenue"], name="an_customer_revenue")]

    def __str__(self) -> str:
        return f"customer {self.customer_id}"

    @property
    def average_order_value(self) -> Decimal:
        return (self.revenue / self.orders).quantize(ZERO) if self.orders else ZERO


class ProductMetric(models.Model):
    product = models.OneToOneField(
        "orders.Product",
        primary_key=True,
        on_delete=models.CASCADE,
        db_constraint=False,
        related_name="+",
    )
    units = models.IntegerField(default=0)
    revenue = models.DecimalField(max_digits=16, decimal_places=2, default=ZERO)
    orders = models.IntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["-revenue"], name="an_product_revenue")]

    def __str__(self) -> str:
        return f"product {self.product_id}"
