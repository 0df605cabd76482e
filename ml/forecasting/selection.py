"""Backtest, model choice with held-out scoring (nested rolling origin), conformal intervals.

Each product is backtested from ``K`` rolling origins spaced ``horizon`` apart, the last one
``horizon`` before the end; every candidate forecasts ``horizon`` periods from each origin
with only the data before it. The model for the final forecast is the candidate with the
lowest MAE over all ``K`` windows (seasonal naive unless another is strictly better).

The figures stored with a forecast must not come from the windows the choice was made on:
those are below seasonal naive's by construction. So the same choice rule is replayed at
each origin ``j >= 1`` using only the windows before it, and the model it picks is scored on
window ``j``, which that choice never saw. ``holdout_*`` are those scores over windows
``1..K-1`` (seasonal naive scored on the same windows), and they can be worse than naive.

Intervals are split conformal: the absolute errors on the backtest windows of the model the
rule picks from the windows before each (``held_out_errors``), divided by that product's
mean absolute error there (so products of any size pool) and by the step's share of the
error growth (so steps pool), give one calibration set
across all products, origins and steps; the bound is the point forecast plus or minus the
conformal quantile of that set times the product's scale and the step's shape (see
``conformal_calibration``). ``holdout_coverage`` replays this too: window ``j`` is covered by the
interval calibrated on windows before ``j`` only.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ml.features import SEASON_LENGTHS, Freq
from ml.forecasting.boosting import gbm_forecasts
from ml.forecasting.naive import in_sample_errors, mase_scale, seasonal_naive
from ml.forecasting.panel import Panel, Progress, ProgressCallback, future_periods
from ml.forecasting.smoothing import ETS_CHUNK, ets_forecasts
from ml.forecasting.theta import theta_forecasts

SEASONAL_NAIVE = "seasonal_naive"
EXP_SMOOTHING = "exp_smoothing"
THETA = "theta"
# The mean of exp_smoothing and theta: combinations of statistical models won M4.
ENSEMBLE = "ensemble"
GRADIENT_BOOSTING = "gradient_boosting"
CANDIDATES = (SEASONAL_NAIVE, EXP_SMOOTHING, THETA, ENSEMBLE, GRADIENT_BOOSTING)
ENSEMBLE_MEMBERS = (EXP_SMOOTHING, THETA)
DEFAULT_BACKTEST_ORIGINS = 4

INTERVAL_LEVEL = 0.8
# Not backtested (short history): quantiles of in-sample seasonal-naive errors.
FALLBACK_QUANTILES = (0.1, 0.9)

# (panel, freq, origins, horizon, random_state, tracker) -> (products, origins, horizon)
ModelFunction = Callable[[Panel, Freq, np.ndarray, int, int, Progress], np.ndarray]


@dataclass(frozen=True)
class ProductForecast:
    """Forecast of one product. ``points`` are (period start as ISO date, value) pairs;
    ``lower``/``upper`` the 80 % conformal interval aligned with them. ``holdout_*`` are
    scored on backtest windows the model choice did not see (see the module doc); None when
    not backtested (short history) or undefined (WAPE with no demand, MASE with a zero
    in-sample scale)."""

    sku: str
    freq: str
    horizon: int
    model: str
    points: list[tuple[str, float]]
    lower: list[float]
    upper: list[float]
    holdout_mae: float | None
    holdout_wape: float | None
    holdout_mase: float | None
    holdout_naive_mae: float | None
    holdout_naive_wape: float | None
    holdout_naive_mase: float | None
    holdout_coverage: float | None
    # The chosen model's absolute errors on the backtest windows (origins, horizon), kept only
    # when asked (``forecast_panel(keep_backtest_errors=True)``): the evaluation pools them
    # across series to calibrate intervals. None when not kept or not backtested.
    backtest_errors: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def holdout_ratio(self) -> float | None:
        return mae_ratio(self.holdout_mae, self.holdout_naive_mae)


def mae_ratio(mae: float | None, naive_mae: float | None) -> float | None:
    """mae / naive_mae; 1.0 when both are 0 (a tie), None when only naive is 0 or either is
    missing."""
    if mae is None or naive_mae is None:
        return None
    if naive_mae == 0:
        return 1.0 if mae == 0 else None
    ratio = mae / naive_mae
    return ratio if math.isfinite(ratio) else None


def model_functions() -> dict[str, ModelFunction]:
    return {EXP_SMOOTHING: _smoothing, THETA: theta_forecasts, GRADIENT_BOOSTING: gbm_forecasts}


def _smoothing(panel, freq, origins, horizon, random_state, tracker):
    return ets_forecasts(panel, origins, horizon, SEASON_LENGTHS[freq], tracker)


def forecast_panel(
    panel: Panel,
    freq: Freq,
    horizon: int,
    n_origins: int,
    random_state: int,
    progress: ProgressCallback | None,
    candidates: Sequence[str] = CANDIDATES,
    extra_models: dict[str, ModelFunction] | None = None,
    keep_backtest_errors: bool = False,
) -> list[ProductForecast]:
    season = SEASON_LENGTHS[freq]
    length = panel.length
    functions = model_functions() | (extra_models or {})
    origins = np.array([length - horizon * j for j in range(n_origins, 0, -1)])
    backtested = (length - panel.starts) >= (n_origins + 1) * horizon
    if origins[0] < 2:
        backtested[:] = False
    wanted = [c for c in candidates if c != SEASONAL_NAIVE]
    if ENSEMBLE in wanted:
        wanted += [m for m in ENSEMBLE_MEMBERS if m not in wanted]
    fitted = [c for c in wanted if c != ENSEMBLE] if backtested.any() else []
    steps = -(-len(panel.skus) // ETS_CHUNK) if EXP_SMOOTHING in fitted else 0
    steps += (n_origins + 1) * (GRADIENT_BOOSTING in fitted)
    steps += sum(c not in (EXP_SMOOTHING, GRADIENT_BOOSTING) for c in fitted)
    tracker = Progress(progress, steps + 1)

    all_origins = np.append(origins, length) if backtested.any() else np.array([length])
    naive = np.stack(
        [seasonal_naive(panel.values, panel.starts, o, horizon, season) for o in all_origins],
        axis=1,
    )
    computed = {SEASONAL_NAIVE: naive}
    for name in fitted:
        predicted = functions[name](panel, freq, all_origins, horizon, random_state, tracker)
        # A model that cannot fit a product at an origin leaves naive's forecast there.
        computed[name] = np.clip(np.where(np.isnan(predicted), naive, predicted), 0.0, None)
    if fitted and ENSEMBLE in wanted:
        computed[ENSEMBLE] = np.mean([computed[m] for m in ENSEMBLE_MEMBERS], axis=0)
    names = list(computed)
    # (products, models, origins, horizon); the last origin is the real forecast.
    predictions = np.stack([computed[name] for name in names], axis=1)
    allowed = np.array([name in candidates for name in names])
    forecasts = _assemble(
        panel, freq, horizon, origins, backtested, predictions, names, allowed,
        keep_backtest_errors,
    )  # fmt: skip
    tracker.step()
    return forecasts


# --- choice and scoring -------------------------------------------------------------------


def choose(errors: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Index of the model per product from absolute errors (products, models, origins,
    horizon): the lowest MAE among the allowed models, and model 0 (seasonal naive) unless
    the best is strictly better than it, when naive is allowed."""
    maes = np.nanmean(errors.reshape(errors.shape[0], errors.shape[1], -1), axis=2)
    maes = np.where(np.isnan(maes) | ~allowed[None, :], np.inf, maes)
    best = maes.argmin(axis=1)
    if allowed[0]:
        rows = np.arange(len(best))
        best = np.where(maes[rows, best] < maes[:, 0], best, 0)
    return best


def _assemble(
    panel: Panel,
    freq: Freq,
    horizon: int,
    origins: np.ndarray,
    backtested: np.ndarray,
    predictions: np.ndarray,
    names: list[str],
    allowed: np.ndarray,
    keep_backtest_errors: bool = False,
) -> list[ProductForecast]:
    n, k = len(panel.skus), len(origins)
    rows = np.arange(n)
    season = SEASON_LENGTHS[freq]
    default = 0 if allowed[0] else int(np.argmax(allowed))
    chosen = np.full(n, default)
    holdout: dict[str, np.ndarray] = {}
    scale = np.ones(n)
    q = np.zeros(horizon)
    kept: list[np.ndarray | None] = [None] * n
    if backtested.any():
        actual = np.stack([panel.values[:, o : o + horizon] for o in origins], axis=1)
        errors = np.abs(predictions[:, :, :k] - actual[:, None])
        chosen = np.where(backtested, choose(errors, allowed), default)
        calibration = held_out_errors(errors, allowed)
        scale, q = conformal_calibration(calibration)
        if keep_backtest_errors:
            kept = [calibration[i] if backtested[i] else None for i in range(n)]
        holdout = _holdout(panel, origins, errors, allowed, actual, season)
    points = predictions[rows, chosen, -1]
    lower, upper = _intervals(panel, points, scale, q, backtested, season)
    labels = [p.date().isoformat() for p in future_periods(panel, freq, horizon)]
    return [
        ProductForecast(
            sku=str(panel.skus[i]),
            freq=freq,
            horizon=horizon,
            model=names[chosen[i]],
            points=list(zip(labels, points[i].tolist(), strict=True)),
            lower=lower[i].tolist(),
            upper=upper[i].tolist(),
            **_holdout_fields(holdout, i, bool(backtested[i])),
            backtest_errors=kept[i],
        )
        for i in range(n)
    ]


def held_out_errors(errors: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Absolute errors (products, K - 1, horizon) of the model the choice rule picks from
    windows before j, on window j, for j >= 1: what the rule's forecasts err by on windows
    it did not choose on. Intervals are calibrated on these. The chosen model's errors on
    the windows it was chosen on are smaller than its errors to come (it won there partly
    by luck), and intervals calibrated on them covered 74 % of held-out points on the real
    monthly fixture."""
    rows = np.arange(errors.shape[0])
    windows = [
        errors[rows, choose(errors[:, :, :j], allowed), j] for j in range(1, errors.shape[2])
    ]
    return np.stack(windows, axis=1)


def _holdout(
    panel: Panel,
    origins: np.ndarray,
    errors: np.ndarray,
    allowed: np.ndarray,
    actual: np.ndarray,
    season: int,
) -> dict[str, np.ndarray]:
    """Replay the choice and the calibration at each origin j >= 1 on windows < j only and
    score both on window j. Returns per-product arrays."""
    n, k = errors.shape[0], errors.shape[2]
    rows = np.arange(n)
    model_errors, naive_errors, covered = [], [], []
    held_out = held_out_errors(errors, allowed)
    for j in range(1, k):
        picked = choose(errors[:, :, :j], allowed)
        # Calibrated as the final forecast is, on held-out errors of windows before j; the
        # first window has none, so it uses the chosen model's own.
        before = held_out[:, : j - 1] if j > 1 else errors[rows, picked, :1]
        scale, q = conformal_calibration(before)
        window = errors[rows, picked, j]
        model_errors.append(window)
        naive_errors.append(errors[:, 0, j])
        covered.append(window <= q[None, :] * scale[:, None])
    model_errors = np.stack(model_errors, axis=1).reshape(n, -1)
    naive_errors = np.stack(naive_errors, axis=1).reshape(n, -1)
    demand = np.abs(actual[:, 1:]).reshape(n, -1).sum(axis=1)
    mase = mase_scale(panel.values, panel.starts, int(origins[1]), season)
    with np.errstate(invalid="ignore", divide="ignore"):
        result = {
            "mae": model_errors.mean(axis=1),
            "naive_mae": naive_errors.mean(axis=1),
            "wape": np.where(demand > 0, model_errors.sum(axis=1) / demand, np.nan),
            "naive_wape": np.where(demand > 0, naive_errors.sum(axis=1) / demand, np.nan),
        }
        result["mase"] = result["mae"] / mase
        result["naive_mase"] = result["naive_mae"] / mase
    result["coverage"] = np.stack(covered, axis=1).reshape(n, -1).mean(axis=1)
    return result


def _holdout_fields(holdout: dict[str, np.ndarray], i: int, backtested: bool) -> dict:
    keys = ("mae", "wape", "mase", "naive_mae", "naive_wape", "naive_mase", "coverage")
    if not backtested:
        return {f"holdout_{key}": None for key in keys}
    return {f"holdout_{key}": number(holdout[key][i]) for key in keys}


def number(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


# --- intervals ----------------------------------------------------------------------------


def conformal_calibration(errors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(scale per product, half-width multiplier per step) from absolute errors (products,
    origins, horizon).

    The score of an error is the error over its product's mean absolute error on the same
    windows and over its step's shape (the mean score at that step over the mean score at
    all steps, made non-decreasing: errors grow with the step). All scores of all steps
    then form one calibration set, and the multiplier of step h is its shape times the
    ceil((m + 1) * level) / m empirical quantile of the m scores (the split-conformal rule).

    One quantile per step (the earlier rule) had one score per product and origin: 3 series
    with 4 backtest windows give 12, whose conformal quantile is the 11th largest, and the
    intervals covered 89-94 % on real monthly series instead of 80 %. Pooling the steps
    gives ``horizon`` times as many scores; the shape keeps the widening with the step.
    """
    n, _, horizon = errors.shape
    scale = np.nanmean(errors.reshape(n, -1), axis=1) if errors.size else np.zeros(n)
    scale = np.nan_to_num(scale)
    usable = scale > 0
    q = np.zeros(horizon)
    if not usable.any():
        return scale, q
    scores = errors[usable] / scale[usable, None, None]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        per_step = np.nanmean(scores.reshape(-1, horizon), axis=0)
    per_step = np.nan_to_num(per_step)
    if not np.any(per_step > 0):
        return scale, q
    shape = np.maximum.accumulate(np.where(per_step > 0, per_step, np.nan))
    shape = np.nan_to_num(shape / np.nanmean(per_step), nan=1.0)
    shape = np.where(shape > 0, shape, 1.0)
    pooled = (scores / shape[None, None, :]).ravel()
    pooled = pooled[np.isfinite(pooled)]
    if pooled.size:
        level = min(1.0, math.ceil((pooled.size + 1) * INTERVAL_LEVEL) / pooled.size)
        q = shape * np.quantile(pooled, level, method="higher")
    return scale, q


def _intervals(
    panel: Panel,
    points: np.ndarray,
    scale: np.ndarray,
    q: np.ndarray,
    backtested: np.ndarray,
    season: int,
) -> tuple[np.ndarray, np.ndarray]:
    half = scale[:, None] * q[None, :]
    low = points - half
    high = points + half
    short = ~backtested
    if short.any():
        errors = in_sample_errors(panel.values[short], panel.starts[short], season)
        low_q, high_q = FALLBACK_QUANTILES
        # All-NaN rows (no usable history) warn, then become a zero-width interval.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            below = np.nan_to_num(np.nanquantile(errors, low_q, axis=1))
            above = np.nan_to_num(np.nanquantile(errors, high_q, axis=1))
        low[short] = points[short] + np.minimum(below, 0.0)[:, None]
        high[short] = points[short] + np.maximum(above, 0.0)[:, None]
    return np.clip(low, 0.0, None), high
