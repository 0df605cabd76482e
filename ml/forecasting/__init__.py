"""Demand forecasting per product: candidates, backtested choice, held-out figures, intervals.

Pure numpy/pandas/scikit-learn: no Django import. One module per concern:

- ``panel``: all products on one period grid;
- ``naive``: seasonal naive (the value one season earlier: 7 for D, 52 for W, 12 for M; the
  last value for a product younger than a season), the benchmark and the fallback;
- ``smoothing``: hand-written vectorised Holt-Winters (``exp_smoothing``);
- ``boosting``: one global gradient-boosting model (``gradient_boosting``);
- ``selection``: the rolling-origin backtest, model choice, held-out (nested) scoring and
  split-conformal intervals;
- ``evaluation``: ``evaluate_series`` over many origins and ``summarize``.

A product whose history (from its first sale) is shorter than ``(backtest_origins + 1) *
horizon`` periods is not backtested: it gets ``seasonal_naive`` with every metric None, and an
interval from its in-sample seasonal-naive errors.
"""

from __future__ import annotations

import pandas as pd

from ml.features import Freq, single_threaded
from ml.forecasting.evaluation import evaluate_series, summarize
from ml.forecasting.panel import ProgressCallback, check_arguments, panel_build
from ml.forecasting.selection import (
    CANDIDATES,
    DEFAULT_BACKTEST_ORIGINS,
    EXP_SMOOTHING,
    GRADIENT_BOOSTING,
    INTERVAL_LEVEL,
    SEASONAL_NAIVE,
    ProductForecast,
    forecast_panel,
    mae_ratio,
)

__all__ = [
    "CANDIDATES",
    "EXP_SMOOTHING",
    "GRADIENT_BOOSTING",
    "INTERVAL_LEVEL",
    "SEASONAL_NAIVE",
    "ProductForecast",
    "evaluate_series",
    "forecast_products",
    "mae_ratio",
    "summarize",
]


def forecast_products(
    series: pd.DataFrame,
    freq: Freq,
    horizon: int,
    backtest_origins: int = DEFAULT_BACKTEST_ORIGINS,
    random_state: int = 0,
    progress: ProgressCallback | None = None,
) -> list[ProductForecast]:
    """Forecast ``horizon`` periods for every sku in ``series``, sorted by sku.

    ``series`` is the long ``sku, period, quantity`` frame of ``ml.features.demand_series``
    (or raw lines with ``date, sku, quantity``, aggregated here). ``progress(done, total)``
    is called as work steps finish (one per model fit or block of products, not one per
    product); ``done == total`` at the end.
    """
    check_arguments(freq, horizon, backtest_origins)
    panel = panel_build(series, freq)
    if len(panel.skus) == 0:
        if progress is not None:
            progress(0, 0)
        return []
    with single_threaded():
        return forecast_panel(panel, freq, horizon, backtest_origins, random_state, progress)
