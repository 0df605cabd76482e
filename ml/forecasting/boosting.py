"""One HistGradientBoostingRegressor shared by all products, on lag, rolling-mean and calendar
features of each series divided by its own mean level, with the horizon step as a feature
(direct multi-step, no recursion). One model per origin, trained only on targets before it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor

from ml.features import (
    PANDAS_FREQ,
    SEASON_LENGTHS,
    Freq,
    calendar_features,
    lag_features,
    padded,
    rolling_mean_features,
)
from ml.forecasting.panel import Panel, Progress

GBM_MAX_TRAIN_ROWS = 200_000
# Training sets below this size get smaller trees (see _fit_gbm).
GBM_SMALL_ROWS = 50_000

LAGS: dict[str, tuple[int, ...]] = {
    "D": (1, 2, 3, 7, 14, 28),
    "W": (1, 2, 3, 4, 8, 13, 26),
    "M": (1, 2, 3, 6, 12),
}
WINDOWS: dict[str, tuple[int, ...]] = {"D": (7, 28), "W": (4, 13, 52), "M": (3, 12)}


def gbm_forecasts(
    panel: Panel,
    freq: Freq,
    origins: np.ndarray,
    horizon: int,
    random_state: int,
    tracker: Progress,
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
    panel: Panel,
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
    panel: Panel,
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
