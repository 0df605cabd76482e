"""Additive Holt-Winters (damped trend, additive season) in numpy, for every product and every
parameter set of a small grid at once; each product takes, at each origin, the parameters with
the smallest one-step in-sample error up to that origin (nothing after it reaches a forecast).
"""

from __future__ import annotations

import numpy as np

from ml.forecasting.panel import Panel, Progress

ETS_CHUNK = 256


def ets_grid(seasonal: bool) -> np.ndarray:
    """Rows of (alpha, beta, phi, gamma, uses_season)."""
    alphas = (0.05, 0.1, 0.2, 0.35, 0.6, 0.9)
    trends = ((0.0, 1.0), (0.01, 0.9), (0.01, 0.98), (0.05, 0.9))
    gammas = (0.0, 0.05, 0.15, 0.3) if seasonal else ()
    rows = [(a, b, p, 0.0, 0.0) for a in alphas for b, p in trends]
    rows += [(a, b, p, g, 1.0) for a in alphas for b, p in trends for g in gammas]
    return np.array(rows)


def ets_forecasts(
    panel: Panel, origins: np.ndarray, horizon: int, season: int, tracker: Progress
) -> np.ndarray:
    """Holt-Winters forecasts, shape (products, origins, horizon)."""
    # The season is initialised from the first `season` periods; it needs a few updates
    # after that before the first origin to be worth fitting.
    seasonal = origins[0] >= season + max(4, season // 4)
    warmup = season if seasonal else 1
    grid = ets_grid(seasonal)
    out = np.empty((len(panel.skus), len(origins), horizon))
    for begin in range(0, len(panel.skus), ETS_CHUNK):
        block = slice(begin, begin + ETS_CHUNK)
        out[block] = ets_block(panel.values[block], origins, horizon, season, warmup, grid)
        tracker.step()
    return np.clip(out, 0.0, None)


def ets_block(
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
