"""Reads of the catalogue, stock and orders, with their joins chosen once."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import F, IntegerField, Max, Prefetch, QuerySet, Sum, Value
from django.db.models.functions import Coalesce

from aktina.jobs.models import JobRun
from orders.models import Allocation, Order, OrderItem, OrderStatusChange, Product, Stock, Warehouse


def product_list() -> QuerySet[Product]:
    """Products with their free units in all warehouses and in the best single one (an order
    ships from one warehouse, so the latter is the most one order can get now)."""
    free = F("stocks__quantity") - F("stocks__quantity_allocated")
    return Product.objects.annotate(
        quantity_available=Coalesce(Sum(free), Value(0), output_field=IntegerField()),
        max_orderable=Coalesce(Max(free), Value(0), output_field=IntegerField()),
    ).order_by("sku")


def _is_staff(user) -> bool:
    return bool(user and user.is_authenticated and user.is_staff)


def order_list(*, user) -> QuerySet[Order]:
    """Orders a user may see: staff all, customers their own; lines prefetched once."""
    qs = Order.objects.select_related("customer", "warehouse").prefetch_related(
        Prefetch("items", queryset=OrderItem.objects.select_related("product"))
    )
    return qs if _is_staff(user) else qs.filter(customer=user)


def order_detail_queryset(*, user) -> QuerySet[Order]:
    return order_list(user=user).prefetch_related(
        Prefetch(
            "items__allocations",
            queryset=Allocation.objects.select_related("stock__warehouse"),
        ),
        Prefetch("status_changes", queryset=OrderStatusChange.objects.select_related("actor")),
    )


# The ledger has no index on its payload, so the search is bounded twice: by time (no job for
# an order runs before the order exists) and by count.
ORDER_JOBS_LIMIT = 50


def order_job_runs(*, order: Order) -> list[JobRun]:
    """The job runs whose first argument is `order` (approval, fulfilment, label, analytics...)."""
    runs = JobRun.objects.filter(
        created_at__gte=order.created_at - timedelta(seconds=1), payload__args__0__pk=order.pk
    ).order_by("id")[:ORDER_JOBS_LIMIT]
    label = Order._meta.label_lower
    return [r for r in runs if (r.payload.get("args") or [{}])[0].get("__model__") == label]


def warehouse_list() -> QuerySet[Warehouse]:
    return Warehouse.objects.annotate(
        staged=Coalesce(Sum("stocks__quantity_allocated"), Value(0), output_field=IntegerField())
    ).order_by("code")


def stock_list() -> QuerySet[Stock]:
    return Stock.objects.select_related("product", "warehouse").order_by(
        "product__sku", "warehouse__code"
    )
