"""Demand forecasting per product with backtested model choice and prediction intervals.

Pure numpy/pandas/scikit-learn: no Django import.

Candidates, all vectorised across products:

- ``seasonal_naive``: the value one season earlier (season 7 for D -- the weekly cycle --,
  52 for W, 12 for M); a product with less than one season of history repeats its last
  value instead.
- ``exp_smoothing``: additive Holt-Winters (damped trend, additive season) implemented in
  numpy and run for every product and every parameter set on a grid at once; each product
  takes the parameters with the smallest one-step in-sample error up to the forecast origin.
- ``gradient_boosting``: one HistGradientBoostingRegressor shared by all products, on
  lag, rolling-mean and calendar features of each series divided by its own mean level, with
  the horizon step as a feature (direct multi-step, no recursion).

Each product is backtested from ``backtest_origins`` rolling origins, the last ones spaced
``horizon`` apart, each forecasting ``horizon`` periods. The candidate with the lowest
backtest MAE wins only if it beats seasonal naive strictly, so the chosen model's backtest MAE
is never above seasonal naive's. Intervals (80 %) are the chosen model's backtest error
quantiles added to the point forecast, clipped at 0.

A product whose history (from its first sale) is shorter than ``backtest_origins * horizon
+ horizon`` periods is not backtested: it gets ``seasonal_naive`` with every metric None,
and an interval from its in-sample seasonal-naive errors.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor

from ml.features import (
    DEMAND_OUTPUT,
    PANDAS_FREQ,
    SEASON_LENGTHS,
    Freq,
    calendar_features,
    check_freq,
    demand_series,
    lag_features,
    padded,
    rolling_mean_features,
    single_threaded,
    to_wide,
)

SEASONAL_NAIVE = "seasonal_naive"
EXP_SMOOTHING = "exp_smoothing"
GRADIENT_BOOSTING = "gradient_boosting"
CANDIDATES = (SEASONAL_NAIVE, EXP_SMOOTHING, GRADIENT_BOOSTING)

INTERVAL_QUANTILES = (0.1, 0.9)
GBM_MAX_TRAIN_ROWS = 200_000
# Training sets below this size get smaller trees (see _fit_gbm).
GBM_SMALL_ROWS = 50_000
ETS_CHUNK = 256

LAGS: dict[str, tuple[int, ...]] = {
    "D": (1, 2, 3, 7, 14, 28),
    "W": (1, 2, 3, 4, 8, 13, 26),
    "M": (1, 2, 3, 6, 12),
}
WINDOWS: dict[str, tuple[int, ...]] = {"D": (7, 28), "W": (4, 13, 52), "M": (3, 12)}

ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class ProductForecast:
    """Forecast of one product. ``points`` are (period start as ISO date, value) pairs;
    ``lower``/``upper`` are the 80 % interval bounds aligned with them. Metrics are backtest
    figures of the chosen model and of seasonal naive, None when not backtested (short
    history) or undefined (WAPE with no demand, MASE with a zero in-sample scale)."""

    sku: str
    freq: str
    horizon: int
    model: str
    points: list[tuple[str, float]]
    lower: list[float]
    upper: list[float]
    mae: float | None
    wape: float | None
    mase: float | None
    naive_mae: float | None
    naive_wape: float | None
    naive_mase: float | None


@dataclass(frozen=True)
class _Panel:
    """All products on one period grid: values[i, t] is product i's demand in period t."""

    skus: np.ndarray
    periods: pd.DatetimeIndex
    values: np.ndarray
    starts: np.ndarray  # index of each product's first non-zero period (T if none)

    @property
    def length(self) -> int:
        return self.values.shape[1]


def forecast_products(
    series: pd.DataFrame,
    freq: Freq,
    horizon: int,
    backtest_origins: int = 3,
    random_state: int = 0,
    progress: ProgressCallback | None = None,
) -> list[ProductForecast]:
    """Forecast ``horizon`` periods for every sku in ``series``, sorted by sku.

    ``series`` is the long ``sku, period, quantity`` frame of ``ml.features.demand_series``
    (or raw lines with ``date, sku, quantity``, aggregated here). ``progress(done, total)``
    is called as work steps finish (one per model fit or block of products, not one per
    product); ``done == total`` at the end.
    """
    _check_arguments(freq, horizon, backtest_origins)
    panel = _panel(series, freq)
    if len(panel.skus) == 0:
        if progress is not None:
            progress(0, 0)
        return []
    with single_threaded():
        return _forecast_panel(panel, freq, horizon, backtest_origins, random_state, progress)


def evaluate_series(
    df: pd.DataFrame,
    freq: Freq,
    horizon: int,
    backtest_origins: int = 3,
    random_state: int = 0,
    progress: ProgressCallback | None = None,
) -> list[dict]:
    """Out-of-sample check of the model choice against seasonal naive, one dict per sku.

    The last ``horizon`` periods are held out; ``forecast_products`` runs on the rest (model
    choice by backtest there), and both its chosen forecast and seasonal naive are scored on
    the held-out periods. Keys: ``sku, model, mae, wape, mase, naive_mae, naive_wape,
    naive_mase, ratio`` where ratio = mae / naive_mae (1.0 when both are 0, None when only
    naive is 0). Metrics are None for every sku when the data has no more than ``horizon``
    periods. ``df`` has ``date, sku, quantity`` (or is a ``demand_series`` frame).
    """
    _check_arguments(freq, horizon, backtest_origins)
    panel = _panel(df, freq)
    if len(panel.skus) == 0:
        return []
    if panel.length <= horizon:
        return [_unscored(sku) for sku in panel.skus]
    train = _slice_panel(panel, panel.length - horizon)
    with single_threaded():
        forecasts = _forecast_panel(train, freq, horizon, backtest_origins, random_state, progress)
    actual = panel.values[:, -horizon:]
    chosen = np.array([[value for _, value in f.points] for f in forecasts])
    naive = _seasonal_naive(train.values, train.starts, train.length, horizon, SEASON_LENGTHS[freq])
    scale = _mase_scale(train.values, train.starts, train.length, SEASON_LENGTHS[freq])
    model_metrics = _metrics(actual[:, None, :], chosen[:, None, :], scale)
    naive_metrics = _metrics(actual[:, None, :], naive[:, None, :], scale)
    return [
        _evaluation_row(f.sku, f.model, model_metrics, naive_metrics, i)
        for i, f in enumerate(forecasts)
    ]


def summarize(results: Sequence[dict]) -> dict:
    """Aggregate ``evaluate_series`` rows.

    ``series``: rows; ``scored``: rows with a finite ratio; ``geometric_mean_ratio`` of those
    (ratios floored at 1e-6 so a perfect forecast does not send the log to -inf; None if none
    scored); ``beaten``: ratio < 1; ``worse``: ratio > 1; ``worst_ratio``: the largest ratio.
    """
    ratios = np.array(
        [r["ratio"] for r in results if r.get("ratio") is not None and math.isfinite(r["ratio"])],
        dtype="float64",
    )
    if ratios.size == 0:
        geometric, worst = None, None
    else:
        geometric = float(np.exp(np.mean(np.log(np.maximum(ratios, 1e-6)))))
        worst = float(ratios.max())
    return {
        "series": len(results),
        "scored": int(ratios.size),
        "geometric_mean_ratio": geometric,
        "beaten": int((ratios < 1.0).sum()),
        "worse": int((ratios > 1.0).sum()),
        "worst_ratio": worst,
    }


# --- orchestration ------------------------------------------------------------------------


def _check_arguments(freq: str, horizon: int, backtest_origins: int) -> None:
    check_freq(freq)
    if horizon < 1:
        raise ValueError(f"horizon must be at least 1, got {horizon}")
    if backtest_origins < 1:
        raise ValueError(f"backtest_origins must be at least 1, got {backtest_origins}")


def _panel(series: pd.DataFrame, freq: Freq) -> _Panel:
    if "period" not in series.columns and "date" in series.columns:
        series = demand_series(series, freq)
    if series.empty:
        return _Panel(
            np.array([], dtype=object),
            pd.DatetimeIndex([]),
            np.empty((0, 0)),
            np.array([], dtype=int),
        )
    skus, periods, values = to_wide(series[list(DEMAND_OUTPUT)])
    # A long frame that skipped empty periods still lands on a complete grid.
    grid = pd.date_range(periods.min(), periods.max(), freq=PANDAS_FREQ[freq])
    if len(grid) != len(periods) or not grid.equals(periods):
        frame = pd.DataFrame(values, columns=periods).reindex(columns=grid, fill_value=0.0)
        periods, values = grid, frame.to_numpy(dtype="float64")
    return _Panel(skus.astype(str), periods, values, _first_sale(values))


def _first_sale(values: np.ndarray) -> np.ndarray:
    sold = values != 0
    return np.where(sold.any(axis=1), sold.argmax(axis=1), values.shape[1])


def _slice_panel(panel: _Panel, end: int) -> _Panel:
    values = panel.values[:, :end]
    return _Panel(panel.skus, panel.periods[:end], values, _first_sale(values))


def _forecast_panel(
    panel: _Panel,
    freq: Freq,
    horizon: int,
    n_origins: int,
    random_state: int,
    progress: ProgressCallback | None,
) -> list[ProductForecast]:
    season = SEASON_LENGTHS[freq]
    length = panel.length
    # Origins spaced by horizon, the last one `horizon` before the end, so windows do not
    # overlap and the newest data is scored.
    origins = np.array([length - horizon * j for j in range(n_origins, 0, -1)])
    backtested = (length - panel.starts) >= (n_origins + 1) * horizon
    if origins[0] < 2:
        backtested[:] = False
    ets_blocks = -(-len(panel.skus) // ETS_CHUNK)
    gbm_fits = n_origins + 1 if backtested.any() else 0
    tracker = _Progress(progress, ets_blocks + gbm_fits + 1)

    all_origins = np.append(origins, length) if backtested.any() else np.array([length])
    predictions = {
        SEASONAL_NAIVE: np.stack(
            [_seasonal_naive(panel.values, panel.starts, o, horizon, season) for o in all_origins],
            axis=1,
        )
    }
    if backtested.any():
        predictions[EXP_SMOOTHING] = _ets_forecasts(panel, all_origins, horizon, season, tracker)
        predictions[GRADIENT_BOOSTING] = _gbm_forecasts(
            panel, freq, all_origins, horizon, random_state, tracker
        )
    forecasts = _assemble(panel, freq, horizon, origins, backtested, predictions, season)
    tracker.step()
    return forecasts


class _Progress:
    def __init__(self, callback: ProgressCallback | None, total: int) -> None:
        self.callback, self.total, self.done = callback, total, 0
        if callback is not None:
            callback(0, total)

    def step(self) -> None:
        self.done = min(self.done + 1, self.total)
        if self.callback is not None:
            self.callback(self.done, self.total)


# --- seasonal naive -----------------------------------------------------------------------


def _seasonal_naive(
    values: np.ndarray, starts: np.ndarray, origin: int, horizon: int, season: int
) -> np.ndarray:
    """Forecasts from ``origin`` (values[:, :origin] known): last season repeated, or the last
    value where a product has sold for less than a full season."""
    n = values.shape[0]
    if origin < 1:
        return np.zeros((n, horizon))
    steps = np.arange(horizon)
    seasonal_idx = origin - season + (steps % season)
    history = origin - starts
    use_season = (history >= season) & (origin >= season)
    last = values[:, origin - 1][:, None].repeat(horizon, axis=1)
    if origin < season:
        return last
    return np.where(use_season[:, None], values[:, seasonal_idx], last)


def _mase_scale(values: np.ndarray, starts: np.ndarray, origin: int, season: int) -> np.ndarray:
    """In-sample MAE of seasonal naive (naive for products younger than a season) before
    ``origin``; NaN where no such error exists or it is 0."""
    result = np.full(values.shape[0], np.nan)
    for lag in (season, 1):
        if origin <= lag:
            continue
        errors = np.abs(values[:, lag:origin] - values[:, : origin - lag])
        times = np.arange(lag, origin)
        valid = times[None, :] - lag >= starts[:, None]
        counts = valid.sum(axis=1)
        sums = np.where(valid, errors, 0.0).sum(axis=1)
        fill = np.isnan(result) & (counts > 0)
        result[fill] = sums[fill] / counts[fill]
    result[result == 0] = np.nan
    return result


# --- exponential smoothing ----------------------------------------------------------------


def _ets_grid(seasonal: bool) -> np.ndarray:
    """Rows of (alpha, beta, phi, gamma, uses_season)."""
    alphas = (0.05, 0.1, 0.2, 0.35, 0.6, 0.9)
    trends = ((0.0, 1.0), (0.01, 0.9), (0.01, 0.98), (0.05, 0.9))
    gammas = (0.0, 0.05, 0.15, 0.3) if seasonal else ()
    rows = [(a, b, p, 0.0, 0.0) for a in alphas for b, p in trends]
    rows += [(a, b, p, g, 1.0) for a in alphas for b, p in trends for g in gammas]
    return np.array(rows)


def _ets_forecasts(
    panel: _Panel, origins: np.ndarray, horizon: int, season: int, tracker: _Progress
) -> np.ndarray:
    """Holt-Winters forecasts, shape (products, origins, horizon)."""
    # The season is initialised from the first `season` periods; it needs a few updates
    # after that before the first origin to be worth fitting.
    seasonal = origins[0] >= season + max(4, season // 4)
    warmup = season if seasonal else 1
    grid = _ets_grid(seasonal)
    out = np.empty((len(panel.skus), len(origins), horizon))
    for begin in range(0, len(panel.skus), ETS_CHUNK):
        block = slice(begin, begin + ETS_CHUNK)
        out[block] = _ets_block(panel.values[block], origins, horizon, season, warmup, grid)
        tracker.step()
    return np.clip(out, 0.0, None)


def _ets_block(
    values: np.ndarray,
    origins: np.ndarray,
    horizon: int,
    season: int,
    warmup: int,
    grid: np.ndarray,
) -> np.ndarray:
    """Run every grid parameter set over every series in one pass through time; at each
    origin, keep the forecasts of the parameter set with the lowest squared one-step error
    so far. Only data before an origin reaches its forecasts."""
    n, combos = values.shape[0], grid.shape[0]
    alpha, beta, phi, gamma, uses_season = (grid[:, j][None, :] for j in range(5))
    head = values[:, :warmup]
    level = np.repeat(head.mean(axis=1)[:, None], combos, axis=1)
    trend = np.zeros((n, combos))
    seasonal_state = np.zeros((n, combos, season))
    if warmup == season:
        profile = head - head.mean(axis=1, keepdims=True)
        seasonal_state += profile[:, None, :] * uses_season[:, :, None]
    sse = np.zeros((n, combos))
    damp_sums = np.cumsum(phi[..., None] ** np.arange(1, horizon + 1), axis=-1)  # (1, C, H)
    steps = np.arange(horizon)
    origin_slot = {int(o): j for j, o in enumerate(origins)}
    out = np.empty((n, len(origins), horizon))
    rows = np.arange(n)
    for t in range(warmup, values.shape[1] + 1):
        if t in origin_slot:
            phases = (t + steps) % season
            ahead = level[..., None] + damp_sums * trend[..., None] + seasonal_state[:, :, phases]
            best = sse.argmin(axis=1)
            out[:, origin_slot[t], :] = ahead[rows, best]
        if t == values.shape[1]:
            break
        phase = t % season
        forecast = level + phi * trend + seasonal_state[:, :, phase]
        error = values[:, t][:, None] - forecast
        sse += error * error
        level = level + phi * trend + alpha * error
        trend = phi * trend + beta * error
        seasonal_state[:, :, phase] += gamma * error
    return out


# --- gradient boosting --------------------------------------------------------------------


def _gbm_forecasts(
    panel: _Panel,
    freq: Freq,
    origins: np.ndarray,
    horizon: int,
    random_state: int,
    tracker: _Progress,
) -> np.ndarray:
    """Global gradient-boosting forecasts, shape (products, origins, horizon): one model per
    origin, trained only on targets before it."""
    out = np.empty((len(panel.skus), len(origins), horizon))
    calendar = _calendar_table(panel.periods, freq, horizon)
    for j, origin in enumerate(origins):
        scale = _series_scale(panel.values, panel.starts, int(origin))
        model = _fit_gbm(panel, freq, int(origin), horizon, scale, calendar, random_state)
        out[:, j, :] = _predict_gbm(model, panel, freq, int(origin), horizon, scale, calendar)
        tracker.step()
    return out


@dataclass(frozen=True)
class _FittedGbm:
    model: HistGradientBoostingRegressor
    columns: np.ndarray  # boolean mask of the design columns it was trained on


def _calendar_table(periods: pd.DatetimeIndex, freq: Freq, horizon: int) -> np.ndarray:
    """Calendar features for every period plus ``horizon`` future ones, by period index."""
    future = pd.date_range(periods[-1], periods=horizon + 1, freq=PANDAS_FREQ[freq])[1:]
    return calendar_features(periods.append(future), freq).to_numpy()


def _series_scale(values: np.ndarray, starts: np.ndarray, origin: int) -> np.ndarray:
    """Mean demand since the first sale, before ``origin``; 1 where there is none, so a
    product with no sales yet is not divided by zero."""
    times = np.arange(origin)
    active = times[None, :] >= starts[:, None]
    counts = active.sum(axis=1)
    sums = np.where(active, values[:, :origin], 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = np.where(counts > 0, sums / np.maximum(counts, 1), 0.0)
    return np.where(scale > 0, scale, 1.0)


def _gbm_design(
    scaled: np.ndarray,
    freq: Freq,
    rows: np.ndarray,
    origins: np.ndarray,
    steps: np.ndarray,
    scale: np.ndarray,
    calendar: np.ndarray,
) -> np.ndarray:
    """Feature matrix for (row, origin, step) triples: lags before the origin, recent means,
    last season's value for the target period, the step, the product's level, the calendar."""
    season = SEASON_LENGTHS[freq]
    targets = origins + steps
    lags = lag_features(scaled, rows, origins, LAGS[freq])
    means = rolling_mean_features(scaled, rows, origins, WINDOWS[freq])
    seasonal = _seasonal_lag(scaled, rows, origins, targets, season)
    return np.column_stack(
        [
            lags,
            means,
            seasonal,
            steps.astype("float64"),
            np.log1p(scale[rows]),
            calendar[targets],
        ]
    )


def _seasonal_lag(
    scaled: np.ndarray, rows: np.ndarray, origins: np.ndarray, targets: np.ndarray, season: int
) -> np.ndarray:
    """Values one season before the target and its neighbours, NaN when not yet known at the
    origin (that would leak the future)."""
    pad = season + 1
    table = padded(scaled, pad)
    columns = []
    for shift in (-1, 0, 1):
        source = targets - season + shift
        value = table[rows, np.clip(source + pad, 0, table.shape[1] - 1)]
        columns.append(np.where(source < origins, value, np.nan))
    return np.column_stack(columns)


def _fit_gbm(
    panel: _Panel,
    freq: Freq,
    origin: int,
    horizon: int,
    scale: np.ndarray,
    calendar: np.ndarray,
    random_state: int,
) -> _FittedGbm | None:
    rows, starts_at, steps = _training_triples(panel.starts, origin, horizon, random_state)
    if len(rows) < 20:
        return None
    scaled = panel.values / scale[:, None]
    features = _gbm_design(scaled, freq, rows, starts_at, steps, scale, calendar)
    target = scaled[rows, starts_at + steps]
    # Short histories leave some lag columns all-NaN, which the binner rejects.
    usable = ~np.isnan(features).all(axis=0)
    small = len(target) < GBM_SMALL_ROWS
    # Tree growing has a fixed Python cost per split; a small panel does not need 31-leaf
    # trees anyway, and fewer, smaller trees keep a handful of series to about a second.
    model = HistGradientBoostingRegressor(
        max_iter=150,
        learning_rate=0.08,
        max_leaf_nodes=15 if small else 31,
        min_samples_leaf=20 if small else 40,
        early_stopping=False,
        random_state=random_state,
    )
    model.fit(features[:, usable], target)
    return _FittedGbm(model, usable)


def _training_triples(
    starts: np.ndarray, origin: int, horizon: int, random_state: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, origin, step) triples whose target lies before ``origin`` and whose product had
    sold by then; a fixed random subset when there are more than GBM_MAX_TRAIN_ROWS."""
    n = len(starts)
    step = np.arange(horizon)
    times = np.arange(1, origin)
    row_grid, time_grid, step_grid = np.meshgrid(np.arange(n), times, step, indexing="ij")
    keep = (time_grid + step_grid < origin) & (time_grid > starts[row_grid])
    rows, origins, steps = row_grid[keep], time_grid[keep], step_grid[keep]
    if len(rows) > GBM_MAX_TRAIN_ROWS:
        rng = np.random.default_rng(random_state)
        pick = np.sort(rng.choice(len(rows), size=GBM_MAX_TRAIN_ROWS, replace=False))
        rows, origins, steps = rows[pick], origins[pick], steps[pick]
    return rows, origins, steps


def _predict_gbm(
    fitted: _FittedGbm | None,
    panel: _Panel,
    freq: Freq,
    origin: int,
    horizon: int,
    scale: np.ndarray,
    calendar: np.ndarray,
) -> np.ndarray:
    n = len(panel.skus)
    if fitted is None:
        return np.full((n, horizon), np.nan)
    rows = np.repeat(np.arange(n), horizon)
    steps = np.tile(np.arange(horizon), n)
    origins = np.full(rows.shape, origin)
    scaled = panel.values / scale[:, None]
    features = _gbm_design(scaled, freq, rows, origins, steps, scale, calendar)
    predicted = fitted.model.predict(features[:, fitted.columns])
    predicted = predicted.reshape(n, horizon) * scale[:, None]
    return np.clip(predicted, 0.0, None)


# --- scoring, choice, output --------------------------------------------------------------


def _metrics(actual: np.ndarray, predicted: np.ndarray, scale: np.ndarray) -> dict[str, np.ndarray]:
    """MAE, WAPE, MASE per product over (origins, horizon); NaN where undefined."""
    errors = np.abs(actual - predicted).reshape(actual.shape[0], -1)
    mae = errors.mean(axis=1)
    demand = np.abs(actual).reshape(actual.shape[0], -1).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        wape = np.where(demand > 0, errors.sum(axis=1) / demand, np.nan)
        mase = mae / scale
    return {"mae": mae, "wape": wape, "mase": mase}


def _assemble(
    panel: _Panel,
    freq: Freq,
    horizon: int,
    origins: np.ndarray,
    backtested: np.ndarray,
    predictions: dict[str, np.ndarray],
    season: int,
) -> list[ProductForecast]:
    n_origins = len(origins)
    names = list(predictions)
    scale = _mase_scale(panel.values, panel.starts, int(origins[0]), season)
    if backtested.any():
        actual = np.stack([panel.values[:, o : o + horizon] for o in origins], axis=1)
        scored = {m: _metrics(actual, predictions[m][:, :n_origins], scale) for m in names}
        maes = np.column_stack([np.nan_to_num(scored[m]["mae"], nan=np.inf) for m in names])
        best = maes.argmin(axis=1)
        # Strictly better than seasonal naive (column 0), or seasonal naive it is.
        chosen = np.where(maes[np.arange(len(best)), best] < maes[:, 0], best, 0)
        chosen = np.where(backtested, chosen, 0)
        residuals = np.stack([actual - predictions[m][:, :n_origins] for m in names], axis=1)
        residuals = residuals[np.arange(len(chosen)), chosen].reshape(len(chosen), -1)
    else:
        scored, chosen = {}, np.zeros(len(panel.skus), dtype=int)
        residuals = np.empty((len(panel.skus), 0))
    final = np.stack([predictions[m][:, -1] for m in names], axis=1)
    points = np.clip(final[np.arange(len(chosen)), chosen], 0.0, None)
    lower, upper = _intervals(panel, points, residuals, backtested, season)
    periods = pd.date_range(panel.periods[-1], periods=horizon + 1, freq=PANDAS_FREQ[freq])[1:]
    labels = [p.date().isoformat() for p in periods]
    return [
        ProductForecast(
            sku=str(panel.skus[i]),
            freq=freq,
            horizon=horizon,
            model=names[chosen[i]],
            points=list(zip(labels, points[i].tolist(), strict=True)),
            lower=lower[i].tolist(),
            upper=upper[i].tolist(),
            **_metric_fields(scored, names[chosen[i]], i, bool(backtested[i])),
        )
        for i in range(len(panel.skus))
    ]


def _intervals(
    panel: _Panel,
    points: np.ndarray,
    residuals: np.ndarray,
    backtested: np.ndarray,
    season: int,
) -> tuple[np.ndarray, np.ndarray]:
    """80 % bounds: backtest error quantiles of the chosen model, or in-sample seasonal-naive
    errors for products not backtested; widened to contain the point, clipped at 0."""
    low_q, high_q = INTERVAL_QUANTILES
    low = np.zeros(len(points))
    high = np.zeros(len(points))
    if residuals.shape[1] > 0 and backtested.any():
        low[backtested] = np.quantile(residuals[backtested], low_q, axis=1)
        high[backtested] = np.quantile(residuals[backtested], high_q, axis=1)
    short = ~backtested
    if short.any():
        errors = _in_sample_errors(panel.values[short], panel.starts[short], season)
        # All-NaN rows (no usable history) warn, then become a zero-width interval.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            low[short] = np.nan_to_num(np.nanquantile(errors, low_q, axis=1))
            high[short] = np.nan_to_num(np.nanquantile(errors, high_q, axis=1))
    lower = np.clip(points + np.minimum(low, 0.0)[:, None], 0.0, None)
    upper = points + np.maximum(high, 0.0)[:, None]
    return lower, upper


def _in_sample_errors(values: np.ndarray, starts: np.ndarray, season: int) -> np.ndarray:
    """y[t] - y[t - lag] since each product's first sale; lag is the season when the history
    covers one, else 1; NaN elsewhere. Shape (products, periods)."""
    length = values.shape[1]
    history = length - starts
    lag = np.where(history > season, season, 1)
    times = np.arange(length)
    source = times[None, :] - lag[:, None]
    valid = (source >= starts[:, None]) & (source >= 0)
    previous = np.take_along_axis(values, np.clip(source, 0, None), axis=1)
    return np.where(valid, values - previous, np.nan)


def _metric_fields(
    scored: dict[str, dict[str, np.ndarray]], model: str, i: int, backtested: bool
) -> dict[str, float | None]:
    keys = ("mae", "wape", "mase")
    if not backtested:
        return {k: None for k in keys} | {f"naive_{k}": None for k in keys}
    fields = {k: _number(scored[model][k][i]) for k in keys}
    fields |= {f"naive_{k}": _number(scored[SEASONAL_NAIVE][k][i]) for k in keys}
    return fields


def _number(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _evaluation_row(
    sku: str,
    model: str,
    model_metrics: dict[str, np.ndarray],
    naive_metrics: dict[str, np.ndarray],
    i: int,
) -> dict:
    row = {"sku": sku, "model": model}
    row |= {k: _number(model_metrics[k][i]) for k in ("mae", "wape", "mase")}
    row |= {f"naive_{k}": _number(naive_metrics[k][i]) for k in ("mae", "wape", "mase")}
    mae, naive_mae = row["mae"], row["naive_mae"]
    if naive_mae is None or mae is None:
        row["ratio"] = None
    elif naive_mae == 0:
        row["ratio"] = 1.0 if mae == 0 else None
    else:
        row["ratio"] = mae / naive_mae
    return row


def _unscored(sku: str) -> dict:
    keys = ("mae", "wape", "mase", "naive_mae", "naive_wape", "naive_mase", "ratio")
    return {"sku": str(sku), "model": SEASONAL_NAIVE} | dict.fromkeys(keys)
