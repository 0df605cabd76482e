"""Reads for the dashboard: a fixed, small number of indexed queries whatever the history size.

Revenue and orders per day come from `DailyMetric` (one row per day), the funnel from
`DailyStatusMetric` (one row per day and status), top lists from the lifetime per-product
and per-customer rows (index on revenue). Lead-time percentiles are computed here from the
most recent `LEAD_TIME_SAMPLE` orders of the window (a LIMIT on the day index), not stored:
percentiles cannot be maintained incrementally and reversibly, a bounded sample can.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.core.cache import cache
from django.db.models import Sum
from django.utils import timezone

from analytics.models import (
    CustomerMetric,
    DailyMetric,
    DailyStatusMetric,
    OrderContribution,
    ProductMetric,
)
from orders.models import Order

# Deleted by `analytics.services.dashboard_invalidate` after every metric change.
DASHBOARD_CACHE_KEY = "dashboard.analytics"
# Staleness bound should an invalidation race with a rebuild.
DASHBOARD_TTL_SECONDS = 300
WINDOWS = (30, 90)
TOP_N = 10
LEAD_TIME_SAMPLE = 5000


def dashboard_analytics() -> dict:
    """The dashboard, from the cache; rebuilt (and cached) when an update invalidated it."""
    data = cache.get(DASHBOARD_CACHE_KEY)
    if data is None:
        data = dashboard_build()
        cache.set(DASHBOARD_CACHE_KEY, data, DASHBOARD_TTL_SECONDS)
    return data


def dashboard_build(*, now: dt.datetime | None = None) -> dict:
    now = now or timezone.now()
    today = timezone.localdate(now)
    longest = max(WINDOWS)
    start = today - dt.timedelta(days=longest - 1)

    rows = {m.day: m for m in DailyMetric.objects.filter(day__gte=start, day__lte=today)}
    series = []
    for offset in range(longest):
        day = start + dt.timedelta(days=offset)
        m = rows.get(day)
        series.append(
            {
                "day": day,
                "orders": m.orders if m else 0,
                "orders_booked": m.orders_booked if m else 0,
                "revenue": m.revenue if m else Decimal("0.00"),
                "revenue_shipped": m.revenue_shipped if m else Decimal("0.00"),
            }
        )
    totals = {f"last_{w}_days": _totals(series[-w:]) for w in WINDOWS}

    by_status = dict(
        DailyStatusMetric.objects.filter(day__gte=start, day__lte=today)
        .values_list("status")
        .annotate(total=Sum("orders"))
        .order_by()
    )
    funnel = [
        {"status": value, "label": label, "orders": by_status.get(value, 0)}
        for value, label in Order.Status.choices
    ]
    placed = sum(by_status.values())
    shortage = by_status.get(Order.Status.INVENTORY_SHORTAGE, 0)

    lead_times = list(
        OrderContribution.objects.filter(
            day__gte=start, day__lte=today, lead_time_seconds__isnull=False
        )
        .order_by("-day")
        .values_list("lead_time_seconds", flat=True)[:LEAD_TIME_SAMPLE]
    )
    lead_orders = sum(rows[d].lead_time_orders for d in rows)
    lead_total = sum(rows[d].lead_time_total_seconds for d in rows)

    top_products = [
        {
            "product_id": m.product_id,
            "sku": m.product.sku,
            "name": m.product.name,
            "units": m.units,
            "orders": m.orders,
            "revenue": m.revenue,
        }
        for m in ProductMetric.objects.select_related("product").order_by("-revenue", "pk")[:TOP_N]
    ]
    top_customers = [
        {
            "customer_id": m.customer_id,
            "username": m.customer.username,
            "orders": m.orders,
            "revenue": m.revenue,
            "average_order_value": m.average_order_value,
            "first_order_at": m.first_order_at,
            "last_order_at": m.last_order_at,
        }
        for m in CustomerMetric.objects.select_related("customer").order_by("-revenue", "pk")[
            :TOP_N
        ]
    ]
    return {
        "generated_at": now,
        "totals": totals,
        "days_30": series[-30:],
        "days_90": series,
        "status_funnel": funnel,
        "shortage_rate": round(shortage / placed, 4) if placed else 0.0,
        "lead_time": {
            "p50_seconds": percentile(lead_times, 50),
            "p95_seconds": percentile(lead_times, 95),
            "mean_seconds": round(lead_total / lead_orders, 1) if lead_orders else None,
            "orders": lead_orders,
            "sample_size": len(lead_times),
        },
        "top_products": top_products,
        "top_customers": top_customers,
    }


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile; None for no data."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return round(ordered[rank], 1)


def _totals(days: list[dict]) -> dict:
    orders = sum(d["orders"] for d in days)
    booked = sum(d["orders_booked"] for d in days)
    revenue = sum((d["revenue"] for d in days), Decimal("0.00"))
    return {
        "orders": orders,
        "orders_booked": booked,
        "revenue": revenue,
        "revenue_shipped": sum((d["revenue_shipped"] for d in days), Decimal("0.00")),
        "average_order_value": (revenue / booked).quantize(Decimal("0.01")) if booked else None,
    }
