"""Out-of-sample evaluation over many rolling origins, as `manage.py evaluate_forecasts` runs it.

At every evaluation origin the forecaster sees only the data before it (its own backtest,
model choice and interval calibration included) and forecasts ``horizon`` periods, which
are scored against what happened and against seasonal naive from the same origin. One
window is luck; many windows give a figure with a spread.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ml.features import SEASON_LENGTHS, Freq, single_threaded
from ml.forecasting.naive import mase_scale, seasonal_naive
from ml.forecasting.panel import (
    Progress,
    ProgressCallback,
    check_arguments,
    panel_build,
    panel_slice,
)
from ml.forecasting.selection import (
    CANDIDATES,
    DEFAULT_BACKTEST_ORIGINS,
    INTERVAL_LEVEL,
    ModelFunction,
    forecast_panel,
    mae_ratio,
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
) -> list[dict]:
    """Score the forecaster at up to ``max_origins`` origins ``step`` apart (default: the
    horizon, so the scored windows do not overlap); one dict per sku, sorted by sku.

    Keys: ``sku``; ``origins`` scored; ``ratio``: geometric mean over the origins of MAE /
    seasonal naive's MAE (origins where naive's MAE is 0 and the model's is not are left
    out), with ``ratio_p10``/``ratio_p90`` over origins; ``worse_share``: the share of
    origins where the choice was worse than naive; ``mae``/``naive_mae``/``mase``/
    ``naive_mase``: means over origins; ``coverage``: the share of scored points inside the
    80 % interval; ``models``: how often each model was chosen.
    """
    check_arguments(freq, horizon, backtest_origins)
    if max_origins < 1:
        raise ValueError(f"max_origins must be at least 1, got {max_origins}")
    panel = panel_build(df, freq)
    if len(panel.skus) == 0:
        return []
    season = SEASON_LENGTHS[freq]
    step = step or horizon
    origins = evaluation_origins(panel.length, horizon, season, backtest_origins, max_origins, step)
    if not origins:
        return [_unscored(sku) for sku in panel.skus]
    tracker = Progress(progress, len(origins))
    n = len(panel.skus)
    scored = {k: np.full((n, len(origins)), np.nan) for k in ("mae", "naive", "mase", "nmase")}
    covered = np.zeros((n, len(origins)))
    models = [Counter() for _ in range(n)]
    for j, origin in enumerate(origins):
        train = panel_slice(panel, origin)
        with single_threaded():
            forecasts = forecast_panel(
                train,
                freq,
                horizon,
                backtest_origins,
                random_state,
                None,
                candidates,
                extra_models,
            )
        actual = panel.values[:, origin : origin + horizon]
        points = np.array([[v for _, v in f.points] for f in forecasts])
        lower = np.array([f.lower for f in forecasts])
        upper = np.array([f.upper for f in forecasts])
        naive = seasonal_naive(train.values, train.starts, origin, horizon, season)
        scale = mase_scale(train.values, train.starts, origin, season)
        scored["mae"][:, j] = np.abs(actual - points).mean(axis=1)
        scored["naive"][:, j] = np.abs(actual - naive).mean(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            scored["mase"][:, j] = scored["mae"][:, j] / scale
            scored["nmase"][:, j] = scored["naive"][:, j] / scale
        covered[:, j] = ((actual >= lower) & (actual <= upper)).mean(axis=1)
        for i, forecast in enumerate(forecasts):
            models[i][forecast.model] += 1
        tracker.step()
    return [
        _series_row(str(panel.skus[i]), scored, covered[i], models[i], i, horizon) for i in range(n)
    ]


def _series_row(
    sku: str, scored: dict[str, np.ndarray], covered: np.ndarray, models: Counter, i: int, h: int
) -> dict:
    ratios = [mae_ratio(m, b) for m, b in zip(scored["mae"][i], scored["naive"][i], strict=True)]
    finite = np.array([r for r in ratios if r is not None], dtype="float64")
    with np.errstate(invalid="ignore"):
        mase, naive_mase = np.nanmean(scored["mase"][i]), np.nanmean(scored["nmase"][i])
    return {
        "sku": sku,
        "origins": len(ratios),
        "ratio": geometric_mean(finite),
        "ratio_p10": _percentile(finite, 10),
        "ratio_p90": _percentile(finite, 90),
        "worse_share": float((finite > 1.0).mean()) if finite.size else None,
        "mae": number(scored["mae"][i].mean()),
        "naive_mae": number(scored["naive"][i].mean()),
        "mase": number(mase),
        "naive_mase": number(naive_mase),
        "coverage": float(covered.mean()),
        "scored_points": len(ratios) * h,
        "models": dict(sorted(models.items())),
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

    ``series``; ``scored``: rows with a finite ratio; ``geometric_mean_ratio`` of those with
    ``ratio_p10``/``ratio_p90`` across series; ``beaten``/``worse``: series with ratio < 1 /
    > 1 and ``worse_share`` = worse / scored; ``worst_ratio``; ``coverage``: the share of all
    scored points inside their interval (None without coverage figures) at
    ``interval_level``.
    """
    ratios = np.array(
        [r["ratio"] for r in results if r.get("ratio") is not None and math.isfinite(r["ratio"])],
        dtype="float64",
    )
    weighted = [
        (r["coverage"], r.get("scored_points", 1)) for r in results if r.get("coverage") is not None
    ]
    points = sum(w for _, w in weighted)
    return {
        "series": len(results),
        "scored": int(ratios.size),
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


def _unscored(sku: str) -> dict:
    keys = ("ratio", "ratio_p10", "ratio_p90", "worse_share", "mae", "naive_mae", "mase")
    return {"sku": str(sku), "origins": 0, **dict.fromkeys(keys)} | {
        "naive_mase": None,
        "coverage": None,
        "scored_points": 0,
        "models": {},
    }
