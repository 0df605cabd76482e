"""Reads of the ML app. Results are read from the CURRENT run of each kind only.

The segmentation summary and the forecast list are cached (`ml.customer_segmentation`,
`ml.sales_forecasts`); a refresh deletes both keys after its transaction commits, and the
TTL bounds the staleness should a reader re-fill a key with the old run while a refresh
commits. Per-customer membership is a plain indexed, paginated query (too big to cache).
"""

from __future__ import annotations

import math

import pandas as pd
from django.core.cache import cache
from django.db.models import QuerySet
from django.utils import timezone

from ml.models import CustomerSegment, PredictionRun, ProductForecast, SegmentProfile
from orders.models import Order, OrderItem

SEGMENTS_CACHE_KEY = "ml.customer_segmentation"
FORECASTS_CACHE_KEY = "ml.sales_forecasts"
CACHE_SECONDS = 600
# Orders that never became business: they say nothing about demand or customer value.
EXCLUDED_STATUSES = (Order.Status.CANCELLED, Order.Status.REJECTED)
LINE_COLUMNS = ["order_id", "customer_id", "date", "sku", "product_id", "quantity", "unit_price"]
DASHBOARD_TOP_FORECASTS = 5


def order_lines_frame() -> pd.DataFrame:
    """Every booked order line as a DataFrame, in ONE query.

    Columns: ``order_id, customer_id, date, sku, product_id, quantity, unit_price``;
    ``date`` is the order's creation time as wall-clock time in the site's zone (naive), so
    days and weeks are the business's, not UTC's; ``unit_price`` is float.
    """
    rows = (
        OrderItem.objects.exclude(order__status__in=EXCLUDED_STATUSES)
        .order_by()
        .values_list(
            "order_id",
            "order__customer_id",
            "order__created_at",
            "product__sku",
            "product_id",
            "quantity",
            "unit_price",
        )
    )
    frame = pd.DataFrame.from_records(rows.iterator(chunk_size=20_000), columns=LINE_COLUMNS)
    if frame.empty:
        return frame.astype(
            {"order_id": "int64", "customer_id": "int64", "date": "datetime64[ns]",
             "sku": "str", "product_id": "int64", "quantity": "int64",
             "unit_price": "float64"}
        )  # fmt: skip
    zone = timezone.get_default_timezone_name()
    frame["date"] = pd.to_datetime(frame["date"], utc=True).dt.tz_convert(zone).dt.tz_localize(None)
    frame["unit_price"] = frame["unit_price"].astype("float64")
    return frame


def run_current(*, kind: str) -> PredictionRun | None:
    """The current run of ``kind`` ("segments" or "forecasts"), or None before the first."""
    return PredictionRun.objects.filter(**{f"current_{kind}": True}).first()


def segmentation_summary() -> dict:
    """Current segments with sizes and mean RFM profile, from the cache.

    ``{"run": {...} | None, "segments": [{name, size, recency_days, frequency, monetary,
    recency_score, frequency_score, monetary_score}, ...]}``, largest segment first.
    """
    data = cache.get(SEGMENTS_CACHE_KEY)
    if data is None:
        data = segmentation_summary_build()
        cache.set(SEGMENTS_CACHE_KEY, data, CACHE_SECONDS)
    return data


def segmentation_summary_build() -> dict:
    run = run_current(kind=PredictionRun.Only.SEGMENTS)
    if run is None:
        return {"run": None, "segments": []}
    profiles = SegmentProfile.objects.filter(run=run).order_by("-size", "name")
    return {
        "run": _run_summary(run),
        "segments": [
            {
                "name": p.name,
                "size": p.size,
                "recency_days": p.recency_days,
                "frequency": p.frequency,
                "monetary": p.monetary,
                "recency_score": p.recency_score,
                "frequency_score": p.frequency_score,
                "monetary_score": p.monetary_score,
            }
            for p in profiles
        ],
    }


def segment_members(*, segment: str | None = None) -> QuerySet[CustomerSegment]:
    """Customers of the current segmentation (optionally one segment), by customer id."""
    members = CustomerSegment.objects.filter(run__current_segments=True)
    if segment:
        members = members.filter(segment=segment)
    return members.select_related("customer").order_by("customer_id")


def sales_forecasts() -> dict:
    """Current forecasts of every product, from the cache, sorted by sku.

    ``{"run": {...} | None, "forecasts": [{product_id, sku, name, freq, horizon, model,
    points: [{period, value, lower, upper}], holdout_mae, holdout_wape, holdout_mase,
    holdout_naive_mae, holdout_naive_wape, holdout_naive_mase, holdout_ratio,
    holdout_coverage}, ...]}``: every figure scored on windows the model choice never saw.
    """
    data = cache.get(FORECASTS_CACHE_KEY)
    if data is None:
        data = sales_forecasts_build()
        cache.set(FORECASTS_CACHE_KEY, data, CACHE_SECONDS)
    return data


def sales_forecasts_build() -> dict:
    run = run_current(kind=PredictionRun.Only.FORECASTS)
    if run is None:
        return {"run": None, "forecasts": []}
    rows = (
        ProductForecast.objects.filter(run=run).select_related("product").order_by("product__sku")
    )
    return {
        "run": _run_summary(run),
        "forecasts": [
            {
                "product_id": f.product_id,
                "sku": f.product.sku,
                "name": f.product.name,
                "freq": f.freq,
                "horizon": f.horizon,
                "model": f.model,
                "points": [_in_units(p) for p in f.points],
                "holdout_mae": f.holdout_mae,
                "holdout_wape": f.holdout_wape,
                "holdout_mase": f.holdout_mase,
                "holdout_naive_mae": f.holdout_naive_mae,
                "holdout_naive_wape": f.holdout_naive_wape,
                "holdout_naive_mase": f.holdout_naive_mase,
                "holdout_ratio": f.holdout_ratio,
                "holdout_coverage": f.holdout_coverage,
            }
            for f in rows
        ],
    }


def _in_units(point: dict) -> dict:
    """A forecast point in whole units, as the API and the dashboard show it: the value
    rounded, the 80 % interval widened to whole units (floor, ceiling) so it still holds
    what the model's interval held."""
    return point | {
        "value": round(point["value"]),
        "lower": math.floor(point["lower"]),
        "upper": math.ceil(point["upper"]),
    }


def forecast_list(*, sku: str | None = None) -> list[dict]:
    forecasts = sales_forecasts()["forecasts"]
    if sku:
        return [f for f in forecasts if f["sku"] == sku]
    return forecasts


def run_list() -> QuerySet[PredictionRun]:
    return PredictionRun.objects.order_by("-started_at", "-id")


def dashboard_ml_summary(*, top: int = DASHBOARD_TOP_FORECASTS) -> dict:
    """What the business dashboard shows of ML, from the two caches (no query when warm).

    ``segments``: the segmentation summary's segments (name, size, RFM means);
    ``top_forecasts``: the ``top`` products with the most forecast demand over the horizon,
    each with ``sku, name, model, total`` and the first period's ``next`` value and bounds;
    ``segments_run`` / ``forecasts_run``: the runs they come from (None before the first);
    ``holdout_geometric_mean_ratio``: the forecasts' held-out MAE ratio to seasonal naive,
    ``holdout_coverage``: the share of held-out actuals inside the 80 % intervals.
    """
    segmentation = segmentation_summary()
    forecasts = sales_forecasts()
    ranked = sorted(
        forecasts["forecasts"],
        key=lambda f: (-sum(p["value"] for p in f["points"]), f["sku"]),
    )
    top_forecasts = [
        {
            "sku": f["sku"],
            "name": f["name"],
            "model": f["model"],
            "freq": f["freq"],
            "total": sum(p["value"] for p in f["points"]),
            "next": f["points"][0] if f["points"] else None,
        }
        for f in ranked[:top]
    ]
    run = forecasts["run"]
    return {
        "segments": segmentation["segments"],
        "segments_run": segmentation["run"],
        "top_forecasts": top_forecasts,
        "forecasts_run": run,
        "holdout_geometric_mean_ratio": (
            run["metrics"].get("holdout_geometric_mean_ratio") if run else None
        ),
        "holdout_coverage": run["metrics"].get("holdout_coverage") if run else None,
    }


def _run_summary(run: PredictionRun) -> dict:
    return {
        "id": run.pk,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "freq": run.freq,
        "horizon": run.horizon,
        "order_lines": run.order_lines,
        "customers": run.customers,
        "products": run.products,
        "metrics": run.metrics,
    }
