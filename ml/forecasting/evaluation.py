"""Out-of-sample evaluation over many rolling origins, as `manage.py evaluate_forecasts` runs it.

Every series is evaluated on its own span (its first to its last row), never on a grid
stretched to another series' dates: the series of an evaluation CSV are independent, so a
period outside a series' span is unknown, not zero demand (docs/architecture.md, "Forecast
evaluation"). At every evaluation origin the forecaster sees only the data before it (its
own backtest and model choice included) and forecasts ``horizon`` periods, which are scored
against what happened and against seasonal naive from the same origin. One window is luck;
many windows give a figure with a spread.

Intervals are calibrated as the app calibrates them (``conformal_calibration``: absolute
errors of the chosen model on its backtest windows over that model's mean absolute error
there), pooled across all series at the same origin index (the n-th newest origin of
each series; every error pooled there comes from before that series' own origin). One
monthly series has 4 backtest windows, so a per-step split-conformal quantile from it alone
is its largest error (wide); pooling across series is what makes the quantile hold.

A series or window that cannot be scored is reported as unscored with its reason and left
out of every average: too short for one origin, all zero, constant, or a window where
seasonal naive is exact (a constant tail: any ratio to it is 0/0 or infinite).
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.features import (
    DEMAND_OUTPUT,
    PANDAS_FREQ,
    SEASON_LENGTHS,
    Freq,
    period_start,
    require_columns,
    single_threaded,
)
from ml.forecasting.naive import mase_scale, seasonal_naive
from ml.forecasting.panel import (
    Panel,
    Progress,
    ProgressCallback,
    check_arguments,
    first_sale,
    panel_slice,
)
from ml.forecasting.selection import (
    CANDIDATES,
    DEFAULT_BACKTEST_ORIGINS,
    INTERVAL_LEVEL,
    ModelFunction,
    conformal_calibration,
    forecast_panel,
    number,
)

MAX_EVALUATION_ORIGINS = 12
# Ratios are floored here before the log, so a perfect forecast does not send it to -inf.
RATIO_FLOOR = 1e-6


def evaluation_origins(
    length: int, horizon: int, season: int, backtest_origins: int, max_origins: int, step: int
) -> list[int]:
    """Origins from the newest (``horizon`` before the end) back by ``step``, as long as the
    history before one leaves room for the forecaster's own backtest plus a season."""
    least = (backtest_origins + 1) * horizon + season
    origins = []
    origin = length - horizon
    while origin >= least and len(origins) < max_origins:
        origins.append(origin)
        origin -= step
    return sorted(origins)


def least_length(horizon: int, season: int, backtest_origins: int) -> int:
    """Periods a series needs for one evaluation origin."""
    return (backtest_origins + 1) * horizon + season + horizon


@dataclass(frozen=True)
class Series:
    """One series on its own grid: its first to its last period, gaps inside it are 0."""

    sku: str
    periods: pd.DatetimeIndex
    values: np.ndarray


def split_series(frame: pd.DataFrame, freq: Freq) -> list[Series]:
    """``date, sku, quantity`` lines (or ``sku, period, quantity``) -> one ``Series`` per sku,
    sorted by sku, each over its own span only."""
    if "period" not in frame.columns:
        require_columns(frame, ("date", "sku", "quantity"))
        frame = pd.DataFrame(
            {
                "sku": frame["sku"].astype("str").to_numpy(),
                "period": period_start(frame["date"], freq).to_numpy(),
                "quantity": frame["quantity"].to_numpy(dtype="float64"),
            }
        )
    require_columns(frame, DEMAND_OUTPUT, what="series")
    totals = frame.groupby(["sku", "period"], sort=True)["quantity"].sum()
    result = []
    for sku, part in totals.groupby(level="sku", sort=True):
        part = part.droplevel("sku")
        grid = pd.date_range(part.index.min(), part.index.max(), freq=PANDAS_FREQ[freq])
        values = part.reindex(grid, fill_value=0.0).to_numpy(dtype="float64")
        result.append(Series(str(sku), grid, values))
    return result


def unscoreable(values: np.ndarray, horizon: int, season: int, backtest_origins: int) -> str | None:
    """Why a whole series cannot be scored, or None."""
    need = least_length(horizon, season, backtest_origins)
    if len(values) < need:
        unit = "period" if len(values) == 1 else "periods"
        return f"too short: {len(values)} {unit}, needs {need} for one origin"
    if not np.any(values):
        return "all zero"
    if np.all(values == values[0]):
        return "constant"
    return None


def evaluate_series(
    df: pd.DataFrame,
    freq: Freq,
    horizon: int,
    *,
    max_origins: int = MAX_EVALUATION_ORIGINS,
    step: int | None = None,
    backtest_origins: int = DEFAULT_BACKTEST_ORIGINS,
    random_state: int = 0,
    candidates: Sequence[str] = CANDIDATES,
    extra_models: dict[str, ModelFunction] | None = None,
    progress: ProgressCallback | None = None,
    workers: int = 1,
) -> list[dict]:
    """Score the forecaster on each series at up to ``max_origins`` origins ``step`` apart
    (default: the horizon, so the scored windows do not overlap); one dict per sku, sorted
    by sku. ``workers`` > 1 evaluates series in that many processes.

    Keys: ``sku``; ``origins`` scored; ``ratio``: geometric mean over the scored origins of
    MAE / seasonal naive's MAE, with ``ratio_p10``/``ratio_p90`` over origins;
    ``worse_share``: the share of origins where the choice was worse than naive;
    ``mae``/``naive_mae``/``mase``/``naive_mase``: means over origins; ``coverage``: the
    share of scored points inside the 80 % interval; ``models``: how often each model was
    chosen; ``periods``/``first``/``last``: the series' own span; ``unscored``: why the
    series has no figures (None when it has); ``unscored_origins``: windows left out.
    """
    check_arguments(freq, horizon, backtest_origins)
    if max_origins < 1:
        raise ValueError(f"max_origins must be at least 1, got {max_origins}")
    season = SEASON_LENGTHS[freq]
    step = step or horizon
    series = split_series(df, freq)
    reasons = {s.sku: unscoreable(s.values, horizon, season, backtest_origins) for s in series}
    todo = [s for s in series if reasons[s.sku] is None]
    tracker = Progress(progress, len(todo))
    arguments = (freq, horizon, max_origins, step, backtest_origins, random_state)
    windows: dict[str, list[dict]] = {}
    if workers > 1 and len(todo) > 1:
        with ProcessPoolExecutor(max_workers=min(workers, len(todo))) as pool:
            futures = {
                pool.submit(series_windows, s, *arguments, candidates, extra_models): s.sku
                for s in todo
            }
            for future in as_completed(futures):
                windows[futures[future]] = future.result()
                tracker.step()
    else:
        for s in todo:
            windows[s.sku] = series_windows(s, *arguments, candidates, extra_models)
            tracker.step()
    _calibrate(windows)
    return [
        _series_row(s, windows[s.sku], horizon)
        if s.sku in windows
        else _unscored(s, reasons[s.sku])
        for s in series
    ]


def series_windows(
    series: Series,
    freq: Freq,
    horizon: int,
    max_origins: int,
    step: int,
    backtest_origins: int,
    random_state: int,
    candidates: Sequence[str] = CANDIDATES,
    extra_models: dict[str, ModelFunction] | None = None,
) -> list[dict]:
    """The forecaster's choice and point forecast at every evaluation origin of one series,
    with what is needed to score it and calibrate its interval (newest origin first)."""
    season = SEASON_LENGTHS[freq]
    values = series.values[None, :]
    panel = Panel(np.array([series.sku]), series.periods, values, first_sale(values))
    origins = evaluation_origins(panel.length, horizon, season, backtest_origins, max_origins, step)
    result = []
    for origin in reversed(origins):
        train = panel_slice(panel, origin)
        with single_threaded():
            forecast = forecast_panel(
                train, freq, horizon, backtest_origins, random_state, None, candidates,
                extra_models, keep_backtest_errors=True,
            )[0]  # fmt: skip
        result.append(
            {
                "actual": panel.values[0, origin : origin + horizon],
                "point": np.array([v for _, v in forecast.points]),
                "naive": seasonal_naive(train.values, train.starts, origin, horizon, season)[0],
                "scale": float(mase_scale(train.values, train.starts, origin, season)[0]),
                "model": forecast.model,
                "errors": forecast.backtest_errors,
            }
        )
    return result


def _calibrate(windows: dict[str, list[dict]]) -> None:
    """Set ``half`` (interval half-width per step) on every window: the app's conformal
    calibration over the backtest errors of all series at the same origin index."""
    depth = max((len(w) for w in windows.values()), default=0)
    for j in range(depth):
        at = [w[j] for w in windows.values() if len(w) > j]
        usable = [w for w in at if w["errors"] is not None]
        if usable:
            scale, q = conformal_calibration(np.stack([w["errors"] for w in usable]))
            for w, s in zip(usable, scale, strict=True):
                w["half"] = s * q
        for w in at:
            if w["errors"] is None:
                w["half"] = np.zeros_like(w["point"])


def _series_row(series: Series, windows: list[dict], horizon: int) -> dict:
    scored = [w for w in windows if np.abs(w["actual"] - w["naive"]).mean() > 0]
    if not scored:
        reason = f"seasonal naive is exact on all {len(windows)} windows (a constant tail)"
        return _unscored(series, reason, unscored_origins=len(windows))
    mae = np.array([np.abs(w["actual"] - w["point"]).mean() for w in scored])
    naive = np.array([np.abs(w["actual"] - w["naive"]).mean() for w in scored])
    scale = np.array([w["scale"] for w in scored])
    ratios = mae / naive
    covered = [
        ((w["actual"] >= np.maximum(w["point"] - w["half"], 0.0))
         & (w["actual"] <= w["point"] + w["half"])).mean()
        for w in scored
    ]  # fmt: skip
    with np.errstate(invalid="ignore", divide="ignore"):
        mase = np.nanmean(np.where(scale > 0, mae / scale, np.nan))
        naive_mase = np.nanmean(np.where(scale > 0, naive / scale, np.nan))
    return {
        "sku": series.sku,
        "origins": len(scored),
        "ratio": geometric_mean(ratios),
        "ratio_p10": _percentile(ratios, 10),
        "ratio_p90": _percentile(ratios, 90),
        "worse_share": float((ratios > 1.0).mean()),
        "mae": number(mae.mean()),
        "naive_mae": number(naive.mean()),
        "mase": number(mase) if not math.isnan(mase) else None,
        "naive_mase": number(naive_mase) if not math.isnan(naive_mase) else None,
        "coverage": float(np.mean(covered)),
        "scored_points": len(scored) * horizon,
        "models": dict(sorted(Counter(w["model"] for w in scored).items())),
        **_span(series),
        "unscored": None,
        "unscored_origins": len(windows) - len(scored),
    }


def _span(series: Series) -> dict:
    return {
        "periods": len(series.values),
        "first": series.periods[0].date().isoformat(),
        "last": series.periods[-1].date().isoformat(),
    }


def geometric_mean(ratios: np.ndarray) -> float | None:
    if ratios.size == 0:
        return None
    return float(np.exp(np.mean(np.log(np.maximum(ratios, RATIO_FLOOR)))))


def _percentile(values: np.ndarray, q: float) -> float | None:
    return float(np.percentile(values, q)) if values.size else None


def summarize(results: Sequence[dict]) -> dict:
    """Aggregate per-series rows (of ``evaluate_series``, or any dicts with ``ratio`` and
    optionally ``coverage``/``scored_points``).

    ``series``; ``scored``: rows with a finite ratio; ``unscored``: the others, left out of
    every figure; ``geometric_mean_ratio`` of the scored with ``ratio_p10``/``ratio_p90``
    across series; ``beaten``/``worse``: series with ratio < 1 / > 1 and ``worse_share`` =
    worse / scored; ``worst_ratio``; ``coverage``: the share of all scored points inside
    their interval (None without coverage figures) at ``interval_level``.
    """
    scored = [r for r in results if r.get("ratio") is not None and math.isfinite(r["ratio"])]
    ratios = np.array([r["ratio"] for r in scored], dtype="float64")
    weighted = [
        (r["coverage"], r.get("scored_points", 1)) for r in scored if r.get("coverage") is not None
    ]
    points = sum(w for _, w in weighted)
    return {
        "series": len(results),
        "scored": int(ratios.size),
        "unscored": len(results) - int(ratios.size),
        "geometric_mean_ratio": geometric_mean(ratios),
        "ratio_p10": _percentile(ratios, 10),
        "ratio_p90": _percentile(ratios, 90),
        "beaten": int((ratios < 1.0).sum()),
        "worse": int((ratios > 1.0).sum()),
        "worse_share": float((ratios > 1.0).mean()) if ratios.size else None,
        "worst_ratio": float(ratios.max()) if ratios.size else None,
        "coverage": sum(c * w for c, w in weighted) / points if points else None,
        "interval_level": INTERVAL_LEVEL,
    }


def _unscored(series: Series, reason: str | None, unscored_origins: int = 0) -> dict:
    keys = ("ratio", "ratio_p10", "ratio_p90", "worse_share", "mae", "naive_mae", "mase")
    return {"sku": series.sku, "origins": 0, **dict.fromkeys(keys)} | {
        "naive_mase": None,
        "coverage": None,
        "scored_points": 0,
        "models": {},
        **_span(series),
        "unscored": reason,
        "unscored_origins": unscored_origins,
    }


def default_workers() -> int:
    """Series are independent: one process per core, at most two (the target machine)."""
    return max(1, min(2, os.cpu_count() or 1))
