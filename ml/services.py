"""Writes of the ML app: a refresh computes everything first, then writes it in one transaction.

`ml_refresh` is the only entry point that changes results. It records a `PredictionRun`
(status running, committed at once so operators see it), reads the order lines in one
query, runs the pure core (`ml.features`, `ml.segmentation`, `ml.forecasting`) outside any
transaction, and then, in ONE transaction, bulk-inserts the rows, marks the run succeeded and
makes it the current run of each kind it computed. A failure anywhere marks the run failed
with the error and re-raises; the previous current runs stay current.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import Counter
from collections.abc import Callable
from decimal import Decimal

import pandas as pd
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from ml.features import PANDAS_FREQ, demand_series, period_start, rfm_table
from ml.forecasting import ProductForecast as Forecast
from ml.forecasting import forecast_products, summarize
from ml.models import (
    MAX_HORIZON,
    CustomerSegment,
    PredictionRun,
    ProductForecast,
    SegmentProfile,
)
from ml.segmentation import SegmentationResult, segment_customers
from ml.selectors import FORECASTS_CACHE_KEY, SEGMENTS_CACHE_KEY, order_lines_frame

logger = logging.getLogger("ml")

CACHE_KEYS = (SEGMENTS_CACHE_KEY, FORECASTS_CACHE_KEY)
KINDS = (PredictionRun.Only.SEGMENTS, PredictionRun.Only.FORECASTS)
# A run still "running" after this long belonged to a process that died (killed, timed out:
# the job's timeout is 10 minutes); the next refresh marks it failed.
ABANDONED_AFTER = dt.timedelta(hours=1)
BULK_BATCH = 5000

ProgressCallback = Callable[[int, int], None]


class MLRefreshError(Exception):
    """Arguments a refresh cannot run with (the message says which and why)."""


def ml_refresh(
    *,
    only: str | None = None,
    freq: str = "W",
    horizon: int = 8,
    progress: ProgressCallback | None = None,
    now: dt.datetime | None = None,
) -> PredictionRun:
    """Recompute segments and/or forecasts from every booked order line; returns the run.

    ``only`` is None (both), ``"segments"`` or ``"forecasts"``; the kind not computed keeps
    its current run. ``progress(done, total)`` is called as steps finish (the total grows
    once forecasting knows its own step count). Raises ``MLRefreshError`` for bad arguments
    (no run is recorded) and re-raises any failure of the computation after marking the run
    failed.
    """
    kinds = _kinds(only)
    _check_arguments(freq, horizon)
    now = now or timezone.now()
    runs_mark_abandoned(now=now)
    run = PredictionRun.objects.create(
        status=PredictionRun.Status.RUNNING,
        only=only or "",
        freq=freq,
        horizon=horizon,
        started_at=now,
    )
    started = time.perf_counter()
    stages = _Stages(progress, fixed=2 + (PredictionRun.Only.SEGMENTS in kinds))
    try:
        lines = order_lines_frame()
        stages.step()
        timings: dict[str, float] = {"load_s": time.perf_counter() - started}
        segmentation = forecasts = None
        local_now = _local_naive(now)
        if PredictionRun.Only.SEGMENTS in kinds:
            tick = time.perf_counter()
            rfm = rfm_table(lines, as_of=local_now)
            segmentation = (rfm, segment_customers(rfm))
            timings["segmentation_s"] = time.perf_counter() - tick
            stages.step()
        if PredictionRun.Only.FORECASTS in kinds:
            tick = time.perf_counter()
            series = complete_period_demand(lines, freq, local_now)
            forecasts = forecast_products(series, freq, horizon, progress=stages.sub)
            timings["forecast_s"] = time.perf_counter() - tick
        _write(run, lines, segmentation, forecasts, kinds, started, timings)
        stages.step()
    except Exception as exc:
        run_mark_failed(run=run, error=exc, started=started)
        logger.exception("ML run #%s failed", run.pk)
        raise
    logger.info(
        "ML run #%s succeeded in %.1f s: %d order lines, %d customers in %s segments, "
        "%d products forecast",
        run.pk,
        run.duration.total_seconds(),
        run.order_lines,
        run.customers,
        run.metrics.get("k", "-"),
        run.products,
    )
    runs_prune_rows()
    return run


def run_mark_failed(*, run: PredictionRun, error: BaseException | str, started: float) -> None:
    """Record the failure on the run; it never was (and is not made) current."""
    finished = timezone.now()
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    PredictionRun.objects.filter(pk=run.pk).update(
        status=PredictionRun.Status.FAILED,
        finished_at=finished,
        duration=dt.timedelta(seconds=time.perf_counter() - started),
        error=text[:10_000],
    )
    run.refresh_from_db()


def runs_mark_abandoned(*, now: dt.datetime | None = None) -> int:
    """Fail runs left "running" by a process that died; returns how many."""
    now = now or timezone.now()
    return PredictionRun.objects.filter(
        status=PredictionRun.Status.RUNNING, started_at__lt=now - ABANDONED_AFTER
    ).update(
        status=PredictionRun.Status.FAILED,
        finished_at=now,
        error="Abandoned: the process running it ended before it finished (killed or timed out).",
    )


def runs_prune_rows(*, keep: int | None = None) -> int:
    """Delete the per-customer and per-product rows of all but the newest ``keep`` successful
    runs (current runs are always kept); the runs themselves and their segment profiles stay
    as history. Returns the number of runs pruned."""
    keep = settings.ML_KEEP_RUNS if keep is None else keep
    succeeded = PredictionRun.objects.filter(status=PredictionRun.Status.SUCCEEDED)
    recent = list(succeeded.order_by("-started_at", "-id").values_list("pk", flat=True)[:keep])
    old = list(
        succeeded.exclude(pk__in=recent)
        .filter(current_segments=False, current_forecasts=False)
        .values_list("pk", flat=True)
    )
    if not old:
        return 0
    with transaction.atomic():
        CustomerSegment.objects.filter(run_id__in=old).delete()
        ProductForecast.objects.filter(run_id__in=old).delete()
    return len(old)


def ml_caches_clear() -> None:
    cache.delete_many(list(CACHE_KEYS))


def complete_period_demand(lines: pd.DataFrame, freq: str, now: pd.Timestamp) -> pd.DataFrame:
    """Demand per sku and period up to the last COMPLETE period before ``now``.

    The period in progress is left out (a half-finished week would read as a slump), and the
    time axis runs to the last complete period even when nothing sold in the final ones, so
    the first forecast point is always the current period.
    """
    if lines.empty:
        return demand_series(lines, freq)
    current = period_start(pd.Series([now]), freq).iloc[0]
    dates = _naive(lines["date"])
    series = demand_series(lines.loc[(dates < current).to_numpy()], freq)
    if series.empty:
        return series
    last_complete = current - pd.tseries.frequencies.to_offset(PANDAS_FREQ[freq])
    if series["period"].max() < last_complete:
        # One zero row on the last complete period stretches every product's grid to it.
        filler = pd.DataFrame(
            {"sku": [series["sku"].iloc[0]], "period": [last_complete], "quantity": [0.0]}
        )
        series = pd.concat([series, filler], ignore_index=True)
    return series


# --- writing ------------------------------------------------------------------------------


def _write(
    run: PredictionRun,
    lines: pd.DataFrame,
    segmentation: tuple[pd.DataFrame, SegmentationResult] | None,
    forecasts: list[Forecast] | None,
    kinds: tuple[str, ...],
    started: float,
    timings: dict[str, float],
) -> None:
    metrics: dict = {}
    with transaction.atomic():
        if segmentation is not None:
            metrics |= _write_segments(run, *segmentation)
        if forecasts is not None:
            metrics |= _write_forecasts(run, lines, forecasts)
        finished = timezone.now()
        run.status = PredictionRun.Status.SUCCEEDED
        run.finished_at = finished
        run.order_lines = len(lines)
        run.metrics = metrics | {k: round(v, 3) for k, v in timings.items()}
        run.duration = dt.timedelta(seconds=time.perf_counter() - started)
        _switch_current(run, kinds)
        transaction.on_commit(ml_caches_clear)


def _write_segments(run: PredictionRun, rfm: pd.DataFrame, result: SegmentationResult) -> dict:
    profiles = result.profiles
    SegmentProfile.objects.bulk_create(
        [
            SegmentProfile(
                run=run,
                name=row.name,
                size=int(row.size),
                recency_days=float(row.recency_days),
                frequency=float(row.frequency),
                monetary=float(row.monetary),
                recency_score=float(row.recency_score),
                frequency_score=float(row.frequency_score),
                monetary_score=float(row.monetary_score),
            )
            for row in profiles.itertuples(index=False)
        ]
    )
    members = _segment_rows(run, rfm, result)
    CustomerSegment.objects.bulk_create(members, batch_size=BULK_BATCH)
    run.customers = len(members)
    return {
        "k": result.k,
        "silhouette": result.silhouette,
        "silhouette_by_k": {str(k): v for k, v in result.silhouette_by_k.items()},
        "segments": {row.name: int(row.size) for row in profiles.itertuples(index=False)},
    }


def _segment_rows(
    run: PredictionRun, rfm: pd.DataFrame, result: SegmentationResult
) -> list[CustomerSegment]:
    frame = rfm
    labels = result.labels.reindex(frame.index)
    return [
        CustomerSegment(
            run=run,
            customer_id=int(customer_id),
            segment=segment,
            recency_days=max(0, int(recency)),
            frequency=int(frequency),
            monetary=Decimal(f"{monetary:.2f}"),
        )
        for customer_id, segment, recency, frequency, monetary in zip(
            frame.index,
            labels.to_numpy(),
            frame["recency_days"].to_numpy(),
            frame["frequency"].to_numpy(),
            frame["monetary"].to_numpy(),
            strict=True,
        )
    ]


def _write_forecasts(run: PredictionRun, lines: pd.DataFrame, forecasts: list[Forecast]) -> dict:
    product_ids = dict(
        lines[["sku", "product_id"]].drop_duplicates("sku").itertuples(index=False, name=None)
    )
    rows = [
        ProductForecast(
            run=run,
            product_id=int(product_ids[f.sku]),
            freq=f.freq,
            horizon=f.horizon,
            model=f.model,
            points=[
                {"period": period, "value": value, "lower": low, "upper": high}
                for (period, value), low, high in zip(f.points, f.lower, f.upper, strict=True)
            ],
            holdout_mae=f.holdout_mae,
            holdout_wape=f.holdout_wape,
            holdout_mase=f.holdout_mase,
            holdout_naive_mae=f.holdout_naive_mae,
            holdout_naive_wape=f.holdout_naive_wape,
            holdout_naive_mase=f.holdout_naive_mase,
            holdout_coverage=f.holdout_coverage,
        )
        for f in forecasts
    ]
    ProductForecast.objects.bulk_create(rows, batch_size=BULK_BATCH)
    run.products = len(rows)
    backtested = [f for f in forecasts if f.holdout_mae is not None]
    summary = summarize(
        [
            {"ratio": f.holdout_ratio, "coverage": f.holdout_coverage, "scored_points": 1}
            for f in backtested
        ]
    )
    # Every figure here is held-out: scored on windows the model choice did not see.
    return {
        "models": dict(sorted(Counter(f.model for f in forecasts).items())),
        "backtested": len(backtested),
        "holdout_geometric_mean_ratio": summary["geometric_mean_ratio"],
        "holdout_ratio_p10": summary["ratio_p10"],
        "holdout_ratio_p90": summary["ratio_p90"],
        "holdout_beaten": summary["beaten"],
        "holdout_worse": summary["worse"],
        "holdout_worst_ratio": summary["worst_ratio"],
        "holdout_coverage": summary["coverage"],
        "interval_level": summary["interval_level"],
    }


def _switch_current(run: PredictionRun, kinds: tuple[str, ...]) -> None:
    """Make ``run`` the current run of ``kinds``; inside the transaction that wrote its rows.

    The old current rows are locked first (a separate statement): on PostgreSQL a concurrent
    refresh waits here until the other one commits, and the UPDATE that follows then sees and
    demotes whichever run is current by then. The partial unique constraints are the last
    guard: two first-ever runs racing make the loser fail with an IntegrityError.
    """
    flags = {f"current_{kind}": True for kind in kinds}
    for field in flags:
        list(
            PredictionRun.objects.select_for_update()
            .filter(**{field: True})
            .values_list("pk", flat=True)
        )
        PredictionRun.objects.filter(**{field: True}).exclude(pk=run.pk).update(**{field: False})
    for field, value in flags.items():
        setattr(run, field, value)
    run.save()


# --- helpers ------------------------------------------------------------------------------


def _kinds(only: str | None) -> tuple[str, ...]:
    if not only:
        return tuple(KINDS)
    if only not in KINDS:
        raise MLRefreshError(f"only must be one of {', '.join(KINDS)}, got {only!r}")
    return (only,)


def _check_arguments(freq: str, horizon: int) -> None:
    if freq not in PANDAS_FREQ:
        raise MLRefreshError(f"freq must be one of {', '.join(PANDAS_FREQ)}, got {freq!r}")
    if isinstance(horizon, bool) or not isinstance(horizon, int):
        raise MLRefreshError(f"horizon must be a whole number, got {horizon!r}")
    if not 1 <= horizon <= MAX_HORIZON:
        raise MLRefreshError(f"horizon must be between 1 and {MAX_HORIZON}, got {horizon}")


def _local_naive(moment: dt.datetime) -> pd.Timestamp:
    """``moment`` as wall-clock time in the site's zone, without the zone (like the lines)."""
    return pd.Timestamp(timezone.localtime(moment).replace(tzinfo=None))


def _naive(dates: pd.Series) -> pd.Series:
    if getattr(dates.dt, "tz", None) is not None:
        return dates.dt.tz_localize(None)
    return dates


class _Stages:
    """Turns fixed steps plus the forecaster's own (done, total) into one progress count."""

    def __init__(self, callback: ProgressCallback | None, fixed: int) -> None:
        self.callback, self.fixed = callback, fixed
        self.done, self.sub_done, self.sub_total = 0, 0, 0
        self._emit()

    def step(self) -> None:
        self.done += 1
        self._emit()

    def sub(self, done: int, total: int) -> None:
        self.sub_done, self.sub_total = done, total
        self._emit()

    def _emit(self) -> None:
        if self.callback is not None:
            self.callback(self.done + self.sub_done, self.fixed + self.sub_total)
