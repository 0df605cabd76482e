"""The Theta method (Assimakopoulos & Nikolopoulos 2000, as formulated by Hyndman & Billah
2003 and implemented by statsmodels' ``ThetaModel``), fitted per product and origin.

The seasonality test and the classical decomposition are statsmodels' own (``acf``,
``seasonal_decompose``). The one step replaced is the smoothing parameter: ``ThetaModel``
estimates it by state-space maximum likelihood, 0.2-0.26 s per fit on the loaded 2-core
machine, so 500 products times 5 origins would take ten minutes. Here alpha is the value of
a fixed grid with the smallest one-step squared error, all grid values run at once in
numpy (about 1 ms per fit). ``tests/ml/test_forecasting.py`` checks the forecasts against
``ThetaModel`` itself.
"""

from __future__ import annotations

import warnings

import numpy as np
from statsmodels.tsa.seasonal import seasonal_decompose
from statsmodels.tsa.stattools import acf

from ml.features import SEASON_LENGTHS, Freq
from ml.forecasting.panel import Panel, Progress

# Fewer periods than this since the first sale: no fit (NaN), the caller keeps naive's.
MIN_HISTORY = 8
ALPHAS = np.array([0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.99])
# 10 % critical value of a chi-squared(1), as statsmodels' seasonality test.
SEASONALITY_CRITICAL = 2.705543454095404


def theta_forecasts(
    panel: Panel,
    freq: Freq,
    origins: np.ndarray,
    horizon: int,
    random_state: int,
    tracker: Progress,
) -> np.ndarray:
    """Theta forecasts, shape (products, origins, horizon); NaN where a product is too young
    at an origin or is constant."""
    season = SEASON_LENGTHS[freq]
    out = np.full((len(panel.skus), len(origins), horizon), np.nan)
    for i in range(len(panel.skus)):
        for j, origin in enumerate(origins):
            y = panel.values[i, panel.starts[i] : origin]
            if len(y) >= MIN_HISTORY and np.ptp(y) > 0:
                out[i, j] = theta_forecast(y, season, horizon)
    tracker.step()
    return out


def theta_forecast(y: np.ndarray, season: int, horizon: int) -> np.ndarray:
    """Theta (theta = 2) forecast of ``horizon`` steps after ``y``."""
    n = len(y)
    seasonal, multiplicative = _seasonal_profile(y, season)
    if seasonal is None:
        x = y
    elif multiplicative:
        x = y / seasonal[np.arange(n) % season]
    else:
        x = y - seasonal[np.arange(n) % season]
    slope = np.polyfit(np.arange(n, dtype="float64"), x, 1)[0]
    alpha, level = _ses(x)
    steps = np.arange(horizon, dtype="float64") + 1 / alpha - (1 - alpha) ** n / alpha
    forecast = level + 0.5 * slope * steps
    if seasonal is not None:
        phases = (n + np.arange(horizon)) % season
        forecast = forecast * seasonal[phases] if multiplicative else forecast + seasonal[phases]
    return forecast


def _seasonal_profile(y: np.ndarray, season: int) -> tuple[np.ndarray | None, bool]:
    """Seasonal indices by phase (0 = the phase of y[0]) when the series is seasonal by
    statsmodels' test, with two full seasons; multiplicative when every index is positive."""
    if season < 2 or len(y) < 2 * season:
        return None, False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rho = acf(y, nlags=season, fft=True)
    if not np.isfinite(rho).all() or len(y) * rho[-1] ** 2 / np.sum(rho[:-1] ** 2) <= (
        SEASONALITY_CRITICAL
    ):
        return None, False
    if np.all(y > 0):
        profile = seasonal_decompose(y, model="multiplicative", period=season).seasonal
        if profile.min() > 0:
            return profile[:season], True
    return seasonal_decompose(y, model="additive", period=season).seasonal[:season], False


def _ses(x: np.ndarray) -> tuple[float, float]:
    """Simple exponential smoothing from level x[0]: (alpha, level after x) for the grid alpha
    with the smallest one-step squared error."""
    level = np.full(len(ALPHAS), x[0])
    sse = np.zeros(len(ALPHAS))
    for value in x[1:]:
        error = value - level
        sse += error * error
        level = level + ALPHAS * error
    best = int(sse.argmin())
    return float(ALPHAS[best]), float(level[best])
