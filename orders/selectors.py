"""Reads of the catalogue, stock and orders, with their joins chosen once."""

from __future__ import annotations

from django.db.models import F, IntegerField, Max, Prefetch, QuerySet, Sum, Value
from django.db.models.functions import Coalesce

from aktina.jobs import runs_tagged
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


def order_list(*, user) -> QuerySet[Order]:
    """Orders a user may see: everyone's with orders.view_all_orders, their own with
    orders.view_order, none without; lines prefetched once."""
    qs = Order.objects.select_related("customer", "warehouse").prefetch_related(
        Prefetch("items", queryset=OrderItem.objects.select_related("product"))
    )
    if user is None or not user.is_authenticated or not user.has_perm("orders.view_order"):
        return qs.none()
    return qs if user.has_perm("orders.view_all_orders") else qs.filter(customer=user)


def order_detail_queryset(*, user) -> QuerySet[Order]:
    return order_list(user=user).prefetch_related(
        Prefetch(
            "items__allocations",
            queryset=Allocation.objects.select_related("stock__warehouse"),
        ),
        Prefetch("status_changes", queryset=OrderStatusChange.objects.select_related("actor")),
    )


ORDER_JOBS_LIMIT = 50


def order_job_runs(*, order: Order) -> list[JobRun]:
    """The job runs tagged with `order` (approval, fulfilment, label, analytics...), oldest
    first: a range of the tag index, whatever the ledger's size."""
    newest = runs_tagged(f"{Order._meta.model_name}:{order.pk}")[:ORDER_JOBS_LIMIT]
    return sorted(newest, key=lambda run: run.pk)


def orders_short_of(*, product: Product, after_id: int = 0, limit: int) -> list[Order]:
    """Orders waiting for stock of `product`, oldest first, after order `after_id`; lines
    prefetched for planning."""
    return list(
        Order.objects.filter(
            status=Order.Status.INVENTORY_SHORTAGE, items__product=product, pk__gt=after_id
        )
        .distinct()
        .order_by("pk")
        .prefetch_related("items")[:limit]
    )


def warehouse_list() -> QuerySet[Warehouse]:
    return Warehouse.objects.annotate(
        staged=Coalesce(Sum("stocks__quantity_allocated"), Value(0), output_field=IntegerField())
    ).order_by("code")


def stock_list() -> QuerySet[Stock]:
    return Stock.objects.select_related("product", "warehouse").order_by(
        "product__sku", "warehouse__code"
    )
