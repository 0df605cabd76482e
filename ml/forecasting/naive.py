"""Seasonal naive, the benchmark every other model is measured against, and its error scale."""

from __future__ import annotations

import numpy as np


def seasonal_naive(
    values: np.ndarray, starts: np.ndarray, origin: int, horizon: int, season: int
) -> np.ndarray:
    """Forecasts from ``origin`` (values[:, :origin] known): last season repeated, or the last
    value where a product has sold for less than a full season."""
    n = values.shape[0]
    if origin < 1:
        return np.zeros((n, horizon))
    steps = np.arange(horizon)
    last = values[:, origin - 1][:, None].repeat(horizon, axis=1)
    if origin < season:
        return last
    seasonal_idx = origin - season + (steps % season)
    use_season = (origin - starts) >= season
    return np.where(use_season[:, None], values[:, seasonal_idx], last)


def mase_scale(values: np.ndarray, starts: np.ndarray, origin: int, season: int) -> np.ndarray:
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


def in_sample_errors(values: np.ndarray, starts: np.ndarray, season: int) -> np.ndarray:
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
