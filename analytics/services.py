"""Writes of the analytics app: incremental metric updates and the full rebuild.

What an order counts as (the same rules in `metrics_apply_order` and `metrics_rebuild`):
- Per day (the local date the order was placed): every order counts in `orders` and in its
  current status; cancelled and rejected orders add no revenue (`orders_booked` excludes them).
- Per customer and per product only booked orders count: a cancel removes the order there.
- Lead time: `shipped_at - created_at`, or `completed_at - created_at` for imported history
  that has no shipped_at; counted on the day the order was placed.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from decimal import Decimal

from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Count, Max, Min, Q, Subquery, Sum
from django.utils import timezone

from analytics.models import (
    CustomerMetric,
    DailyMetric,
    DailyStatusMetric,
    OrderContribution,
    ProductMetric,
)
from analytics.selectors import DASHBOARD_CACHE_KEY
from orders.models import Order, OrderItem

logger = logging.getLogger(__name__)

NOT_BOOKED = frozenset({Order.Status.CANCELLED, Order.Status.REJECTED})
# Shipped revenue: never a shortage, a failed fulfilment, a cancelled or rejected order.
SHIPPED = frozenset({Order.Status.SHIPPED, Order.Status.COMPLETED})
_ORDER_FIELDS = ("id", "customer_id", "status", "total_amount", "created_at", "shipped_at",
                 "completed_at")  # fmt: skip


# --- one order's contribution -------------------------------------------------------------
def _contribution(order: dict, items: list[tuple[int, int, Decimal]]) -> OrderContribution:
    """What `order` (a values() row) and its (product_id, quantity, unit_price) lines count as."""
    end = order["shipped_at"] or order["completed_at"]
    lines: dict[int, list] = {}
    for product_id, quantity, unit_price in items:
        units, revenue = lines.get(product_id, (0, Decimal("0")))
        lines[product_id] = [units + quantity, revenue + quantity * unit_price]
    return OrderContribution(
        order_id=order["id"],
        customer_id=order["customer_id"],
        day=timezone.localdate(order["created_at"]),
        placed_at=order["created_at"],
        status=order["status"],
        booked=order["status"] not in NOT_BOOKED,
        revenue=order["total_amount"],
        lead_time_seconds=int((end - order["created_at"]).total_seconds()) if end else None,
        lines=[[pid, units, str(revenue)] for pid, (units, revenue) in sorted(lines.items())],
    )


def _effects(c: OrderContribution | None) -> dict[tuple, dict[str, object]]:
    """The increments `c` adds to each aggregate row, keyed by (kind, *key)."""
    if c is None:
        return {}
    effects: dict[tuple, dict[str, object]] = {
        ("day", c.day): {
            "orders": 1,
            "orders_booked": int(c.booked),
            "revenue": Decimal(c.revenue) if c.booked else Decimal("0"),
            "revenue_shipped": Decimal(c.revenue) if c.status in SHIPPED else Decimal("0"),
            "lead_time_orders": int(c.lead_time_seconds is not None),
            "lead_time_total_seconds": c.lead_time_seconds or 0,
        },
        ("status", c.day, c.status): {"orders": 1},
    }
    if c.booked:
        effects[("customer", c.customer_id)] = {"orders": 1, "revenue": Decimal(c.revenue)}
        for product_id, units, revenue in c.lines:
            effects[("product", product_id)] = {
                "units": units,
                "revenue": Decimal(revenue),
                "orders": 1,
            }
    return effects


def _difference(old: OrderContribution | None, new: OrderContribution | None) -> dict:
    before, after = _effects(old), _effects(new)
    diff = {}
    for key in before.keys() | after.keys():
        fields = {}
        for name in before.get(key, {}).keys() | after.get(key, {}).keys():
            delta = after.get(key, {}).get(name, 0) - before.get(key, {}).get(name, 0)
            if delta:
                fields[name] = delta
        if fields:
            diff[key] = fields
    return diff


# kind -> (model, key fields, the fields increments add to: every one, as a new row needs them)
_TARGETS = {
    "day": (
        DailyMetric,
        ("day",),
        (
            "orders",
            "orders_booked",
            "revenue",
            "revenue_shipped",
            "lead_time_orders",
            "lead_time_total_seconds",
        ),
    ),
    "status": (DailyStatusMetric, ("day", "status"), ("orders",)),
    "customer": (CustomerMetric, ("customer_id",), ("orders", "revenue")),
    "product": (ProductMetric, ("product_id",), ("units", "revenue", "orders")),
}


def _upsert_add(
    model, names: tuple[str, ...], fields: tuple[str, ...], rows: list[tuple[tuple, dict]]
) -> None:
    """Add each row's increments to the aggregate row with that key, creating missing rows,
    in one `INSERT ... ON CONFLICT DO UPDATE` (SQLite >= 3.24 and PostgreSQL); then drop the
    rows whose orders reached 0.

    Rows go in key order: two runs touching the same rows lock them in the same order.
    """
    rows = sorted(rows, key=lambda row: row[0])
    meta = model._meta
    keys = [meta.get_field(name) for name in names]
    values = [meta.get_field(name) for name in fields]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in keys + values)
    row = "(" + ", ".join(["%s"] * (len(keys) + len(values))) + ")"
    placeholders = ", ".join([row] * len(rows))
    updates = ", ".join(f"{quote(f.column)} = t.{quote(f.column)} + excluded.{quote(f.column)}"
                        for f in values)  # fmt: skip
    params = []
    for key, increments in rows:
        params += [f.get_db_prep_value(v, connection) for f, v in zip(keys, key, strict=True)]
        params += [f.get_db_prep_value(increments.get(f.name, 0), connection) for f in values]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(meta.db_table)} AS t ({columns}) VALUES {placeholders} "
            f"ON CONFLICT ({', '.join(quote(f.column) for f in keys)}) DO UPDATE SET {updates}",
            params,
        )
    shrunk = [key for key, increments in rows if increments.get("orders", 0) < 0]
    if shrunk:
        which = Q()
        for key in shrunk:
            which |= Q(**dict(zip(names, key, strict=True)))
        model.objects.filter(which, orders__lte=0).delete()


def _customer_dates_refresh(customer_id: int) -> None:
    # Min/max cannot be undone incrementally: re-read them from this customer's contributions
    # (two probes of the (customer_id, booked, placed_at) index, bounded by their orders), in
    # the UPDATE itself.
    booked = OrderContribution.objects.filter(customer_id=customer_id, booked=True).values(
        "placed_at"
    )
    CustomerMetric.objects.filter(customer_id=customer_id).update(
        first_order_at=Subquery(booked.order_by("placed_at")[:1]),
        last_order_at=Subquery(booked.order_by("-placed_at")[:1]),
    )


@transaction.atomic
def metrics_apply_order(*, order_id: int) -> bool:
    """Bring the metrics up to date with one order; returns whether anything changed.

    Idempotent: the order's previous contribution is stored, and only the difference to its
    present state is applied, in one transaction with the order's row locked. A missing
    (deleted) order removes its contribution. Cost does not depend on history size.
    """
    order = Order.objects.select_for_update().filter(pk=order_id).values(*_ORDER_FIELDS).first()
    old = OrderContribution.objects.select_for_update().filter(order_id=order_id).first()
    new = None
    if order is not None:
        items = list(
            OrderItem.objects.filter(order_id=order_id).values_list(
                "product_id", "quantity", "unit_price"
            )
        )
        new = _contribution(order, items)
    diff = _difference(old, new)
    changed = bool(diff) or (old is None) != (new is None)
    if new is not None:
        # One statement, not save()'s UPDATE-then-INSERT for a new primary key.
        new.save(force_insert=old is None, force_update=old is not None)
    elif old is not None:
        old.delete()
    by_kind: dict[str, list[tuple[tuple, dict]]] = defaultdict(list)
    for (kind, *key), fields in diff.items():
        by_kind[kind].append((tuple(key), fields))
    for kind in sorted(by_kind):
        _upsert_add(*_TARGETS[kind], by_kind[kind])
    for (customer_id,), _ in by_kind.get("customer", []):
        _customer_dates_refresh(customer_id)
    if changed:
        transaction.on_commit(dashboard_invalidate)
    return changed


def dashboard_invalidate() -> None:
    try:
        cache.delete(DASHBOARD_CACHE_KEY)
    except Exception:
        # The metrics are committed; an unreachable cache must not fail the job. The cached
        # copy expires after DASHBOARD_TTL_SECONDS anyway.
        logger.warning("could not invalidate %s", DASHBOARD_CACHE_KEY, exc_info=True)


# --- the full rebuild ---------------------------------------------------------------------
@transaction.atomic
def metrics_rebuild(*, chunk: int = 5000) -> dict[str, int]:
    """Recompute every metric from the orders with bulk reads and writes; deterministic."""
    if connection.vendor == "postgresql":
        # Incremental updates lock their contribution row; make them wait for the rebuild.
        with connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {OrderContribution._meta.db_table} IN EXCLUSIVE MODE")
    for model in (OrderContribution, DailyMetric, DailyStatusMetric, CustomerMetric, ProductMetric):
        model.objects.all().delete()
    products: dict[int, list] = defaultdict(lambda: [0, Decimal("0"), 0])
    orders = Order.objects.order_by("pk").values(*_ORDER_FIELDS)
    last_pk, count = 0, 0
    while True:
        rows = list(orders.filter(pk__gt=last_pk)[:chunk])
        if not rows:
            break
        last_pk = rows[-1]["id"]
        lines = defaultdict(list)
        for order_id, *line in (
            OrderItem.objects.filter(order_id__gte=rows[0]["id"], order_id__lte=last_pk)
            .order_by("id")
            .values_list("order_id", "product_id", "quantity", "unit_price")
        ):
            lines[order_id].append(line)
        contributions = [_contribution(row, lines[row["id"]]) for row in rows]
        for c in contributions:
            if c.booked:
                for product_id, units, revenue in c.lines:
                    totals = products[product_id]
                    totals[0] += units
                    totals[1] += Decimal(revenue)
                    totals[2] += 1
        OrderContribution.objects.bulk_create(contributions, batch_size=1000)
        count += len(contributions)

    contributions = OrderContribution.objects.order_by()
    booked = Q(booked=True)
    DailyMetric.objects.bulk_create(
        [
            DailyMetric(**row)
            for row in contributions.values("day")
            .annotate(
                orders=Count("order_id"),
                orders_booked=Count("order_id", filter=booked),
                # Before `revenue`: its annotation would shadow the column of that name.
                revenue_shipped=Sum("revenue", filter=Q(status__in=SHIPPED), default=Decimal("0")),
                revenue=Sum("revenue", filter=booked, default=Decimal("0")),
                lead_time_orders=Count("lead_time_seconds"),
                lead_time_total_seconds=Sum("lead_time_seconds", default=0),
            )
            .order_by("day")
        ],
        batch_size=1000,
    )
    DailyStatusMetric.objects.bulk_create(
        [
            DailyStatusMetric(**row)
            for row in contributions.values("day", "status")
            .annotate(orders=Count("order_id"))
            .order_by("day", "status")
        ],
        batch_size=1000,
    )
    CustomerMetric.objects.bulk_create(
        [
            CustomerMetric(**row)
            for row in contributions.filter(booked)
            .values("customer_id")
            .annotate(
                orders=Count("order_id"),
                revenue=Sum("revenue"),
                first_order_at=Min("placed_at"),
                last_order_at=Max("placed_at"),
            )
            .order_by("customer_id")
        ],
        batch_size=1000,
    )
    ProductMetric.objects.bulk_create(
        [
            ProductMetric(product_id=pid, units=units, revenue=revenue, orders=n)
            for pid, (units, revenue, n) in sorted(products.items())
        ],
        batch_size=1000,
    )
    transaction.on_commit(dashboard_invalidate)
    return {
        "orders": count,
        "days": DailyMetric.objects.count(),
        "customers": CustomerMetric.objects.count(),
        "products": ProductMetric.objects.count(),
    }
