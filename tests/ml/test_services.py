import datetime as dt

import pandas as pd
import pytest
from django.core.cache import cache
from django.db import IntegrityError
from django.utils import timezone

from aktina.core import roles
from ml import services
from ml.models import CustomerSegment, PredictionRun, ProductForecast, SegmentProfile
from ml.selectors import (
    FORECASTS_CACHE_KEY,
    SEGMENTS_CACHE_KEY,
    order_lines_frame,
    sales_forecasts,
    segmentation_summary,
)
from ml.services import MLRefreshError, complete_period_demand, ml_refresh, runs_mark_abandoned
from orders.models import Order, OrderItem
from tests.factories import OrderItemFactory, ProductFactory, UserFactory
from tests.ml.helpers import seed_history

pytestmark = pytest.mark.django_db


# Monthly with a short horizon: still backtested, a few times faster than weekly.
FAST = {"freq": "M", "horizon": 3}


@pytest.fixture
def seeded(db, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    seed_history()


def test_refresh_writes_a_current_run_with_segments_and_forecasts(seeded):
    run = ml_refresh()

    run.refresh_from_db()
    assert run.status == PredictionRun.Status.SUCCEEDED
    assert run.current_segments
    assert run.current_forecasts
    assert run.order_lines == OrderItem.objects.count()
    customers = Order.objects.values("customer_id").distinct().count()
    assert run.customers == customers == CustomerSegment.objects.filter(run=run).count()
    assert run.products == ProductForecast.objects.filter(run=run).count() > 0
    assert run.duration > dt.timedelta(0)
    assert run.finished_at >= run.started_at
    assert 3 <= run.metrics["k"] <= 8
    assert sum(run.metrics["segments"].values()) == customers
    assert sum(run.metrics["models"].values()) == run.products
    profiles = SegmentProfile.objects.filter(run=run)
    assert profiles.count() == run.metrics["k"]
    assert sum(p.size for p in profiles) == customers


def test_forecast_rows_hold_points_intervals_and_held_out_metrics(seeded):
    run = ml_refresh(only="forecasts", freq="W", horizon=4)

    forecast = ProductForecast.objects.filter(run=run, holdout_mae__isnull=False).first()
    assert forecast is not None
    assert (forecast.freq, forecast.horizon, len(forecast.points)) == ("W", 4, 4)
    for point in forecast.points:
        assert point["lower"] <= point["value"] <= point["upper"]
        assert point["lower"] >= 0
    # The first point is the current (incomplete) week: only complete weeks are history.
    monday = timezone.localdate() - dt.timedelta(days=timezone.localdate().weekday())
    assert forecast.points[0]["period"] == monday.isoformat()
    assert forecast.holdout_naive_mae is not None
    assert 0.0 <= forecast.holdout_coverage <= 1.0
    rows = ProductForecast.objects.filter(run=run, holdout_mae__isnull=False)
    worse = sum(1 for f in rows if f.holdout_ratio is not None and f.holdout_ratio > 1)
    assert run.metrics["holdout_worse"] == worse
    assert 0.0 <= run.metrics["holdout_coverage"] <= 1.0


def test_a_product_whose_pattern_changed_is_stored_and_summarised_as_worse_than_naive(db):
    from tests.ml.test_forecasting import pattern_change_monthly

    product = ProductFactory(sku="SHIFT")
    customer = UserFactory(role=roles.CUSTOMER)
    this_month = timezone.localdate().replace(day=1)
    values = pattern_change_monthly(months=96)
    for months_back, value in zip(range(96, 0, -1), values, strict=True):
        day = (pd.Timestamp(this_month) - pd.DateOffset(months=months_back)).date()
        item = OrderItemFactory(
            product=product,
            quantity=round(value),
            order__customer=customer,
            order__status=Order.Status.COMPLETED,
        )
        moment = timezone.make_aware(dt.datetime.combine(day, dt.time(12)))
        Order.objects.filter(pk=item.order_id).update(created_at=moment)

    run = ml_refresh(only="forecasts", freq="M", horizon=6)

    stored = ProductForecast.objects.get(run=run)
    assert stored.holdout_ratio > 1.0
    assert run.metrics["holdout_worse"] == 1
    assert run.metrics["holdout_beaten"] == 0
    assert run.metrics["holdout_geometric_mean_ratio"] > 1.0


def test_cancelled_and_rejected_orders_are_not_read():
    kept = OrderItemFactory(quantity=2, order__status=Order.Status.COMPLETED)
    OrderItemFactory(order__status=Order.Status.CANCELLED)
    OrderItemFactory(order__status=Order.Status.REJECTED)

    lines = order_lines_frame()

    assert list(lines["order_id"]) == [kept.order_id]
    assert list(lines.columns) == [
        "order_id", "customer_id", "date", "sku", "product_id", "quantity", "unit_price",
    ]  # fmt: skip
    assert lines["unit_price"].dtype == "float64"
    assert lines["date"].dt.tz is None


def test_order_lines_are_read_in_one_query(seeded, django_assert_num_queries):
    with django_assert_num_queries(1):
        order_lines_frame()


def test_only_segments_keeps_the_current_forecasts(seeded):
    first = ml_refresh(**FAST)
    second = ml_refresh(only="segments", **FAST)

    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.current_segments, first.current_forecasts) == (False, True)
    assert (second.current_segments, second.current_forecasts) == (True, False)
    assert not ProductForecast.objects.filter(run=second).exists()
    assert sales_forecasts()["run"]["id"] == first.pk
    assert segmentation_summary()["run"]["id"] == second.pk


def test_a_failure_while_writing_leaves_the_previous_run_current(seeded, monkeypatch):
    previous = ml_refresh(**FAST)
    segments_before = CustomerSegment.objects.count()

    def explode(*args, **kwargs):
        raise RuntimeError("disk full")

    # Fails after the segment rows were inserted, inside the write transaction.
    monkeypatch.setattr(services, "_write_forecasts", explode)
    with pytest.raises(RuntimeError, match="disk full"):
        ml_refresh(**FAST)

    failed = PredictionRun.objects.exclude(pk=previous.pk).get()
    assert failed.status == PredictionRun.Status.FAILED
    assert failed.error == "RuntimeError: disk full"
    assert not failed.is_current
    assert failed.finished_at is not None
    previous.refresh_from_db()
    assert previous.current_segments
    assert previous.current_forecasts
    assert CustomerSegment.objects.count() == segments_before
    assert not SegmentProfile.objects.filter(run=failed).exists()


def test_a_failure_while_computing_marks_the_run_failed(seeded, monkeypatch):
    def explode(*args, **kwargs):
        raise ValueError("bad data")

    monkeypatch.setattr(services, "segment_customers", explode)
    with pytest.raises(ValueError, match="bad data"):
        ml_refresh(**FAST)

    run = PredictionRun.objects.get()
    assert (run.status, run.error) == (PredictionRun.Status.FAILED, "ValueError: bad data")
    assert segmentation_summary() == {"run": None, "segments": []}


def test_refresh_clears_the_caches_after_commit(seeded, django_capture_on_commit_callbacks):
    assert segmentation_summary()["run"] is None
    assert sales_forecasts()["run"] is None
    assert cache.get(SEGMENTS_CACHE_KEY) is not None

    with django_capture_on_commit_callbacks(execute=True):
        run = ml_refresh(**FAST)

    assert cache.get(SEGMENTS_CACHE_KEY) is None
    assert cache.get(FORECASTS_CACHE_KEY) is None
    assert segmentation_summary()["run"]["id"] == run.pk
    assert len(sales_forecasts()["forecasts"]) == run.products


def test_bad_arguments_record_no_run(db):
    for kwargs in ({"only": "both"}, {"freq": "Q"}, {"horizon": 0}, {"horizon": "8"}):
        with pytest.raises(MLRefreshError):
            ml_refresh(**kwargs)
    assert not PredictionRun.objects.exists()


def test_no_orders_gives_an_empty_current_run(db):
    run = ml_refresh()

    assert run.status == PredictionRun.Status.SUCCEEDED
    assert (run.order_lines, run.customers, run.products) == (0, 0, 0)
    assert segmentation_summary()["segments"] == []


def test_only_one_run_can_be_current_per_kind(seeded):
    ml_refresh(**FAST)
    other = PredictionRun.objects.create(
        status=PredictionRun.Status.SUCCEEDED, started_at=timezone.now()
    )
    other.current_segments = True
    with pytest.raises(IntegrityError):
        other.save()


def test_runs_left_running_by_a_dead_process_are_marked_failed(db):
    old = PredictionRun.objects.create(started_at=timezone.now() - dt.timedelta(hours=2))
    fresh = PredictionRun.objects.create(started_at=timezone.now())

    assert runs_mark_abandoned() == 1
    old.refresh_from_db()
    fresh.refresh_from_db()
    assert old.status == PredictionRun.Status.FAILED
    assert "Abandoned" in old.error
    assert fresh.status == PredictionRun.Status.RUNNING


def test_old_runs_lose_their_rows_but_stay_as_history(seeded, settings):
    settings.ML_KEEP_RUNS = 1
    first = ml_refresh(**FAST)
    second = ml_refresh(**FAST)

    assert not CustomerSegment.objects.filter(run=first).exists()
    assert not ProductForecast.objects.filter(run=first).exists()
    assert SegmentProfile.objects.filter(run=first).exists()
    assert CustomerSegment.objects.filter(run=second).exists()


def test_complete_period_demand_drops_the_period_in_progress_and_reaches_the_last_one():
    now = pd.Timestamp("2025-03-12 10:00")  # a Wednesday
    lines = pd.DataFrame(
        {
            "date": pd.to_datetime(["2025-02-03", "2025-02-10", "2025-03-11"]),
            "sku": ["A", "A", "A"],
            "quantity": [1, 2, 5],
        }
    )

    series = complete_period_demand(lines, "W", now)

    # The sale of the running week (from Monday 10 March) is left out; the grid still runs
    # to the last complete week, 3 March.
    assert series["period"].max() == pd.Timestamp("2025-03-03")
    assert series["quantity"].sum() == 3
