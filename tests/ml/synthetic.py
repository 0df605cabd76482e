"""Synthetic demand panels with known structure (forecasting tests, bench/ml_library.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def long_frame(series: dict[str, np.ndarray], start: str, freq: str) -> pd.DataFrame:
    frames = [
        pd.DataFrame(
            {
                "sku": sku,
                "period": pd.date_range(start, periods=len(values), freq=freq),
                "quantity": np.asarray(values, dtype="float64"),
            }
        )
        for sku, values in series.items()
    ]
    return pd.concat(frames, ignore_index=True)


def seasonal_weekly(n_series: int = 6, weeks: int = 156, seed: int = 0) -> pd.DataFrame:
    """Trend plus a yearly cycle plus modest noise: a season-old value is a poor guess."""
    rng = np.random.default_rng(seed)
    t = np.arange(weeks)
    series = {}
    for i in range(n_series):
        level = 50 + 20 * i
        trend = level * 0.012 * t
        season = 0.4 * level * np.sin(2 * np.pi * t / 52 + i)
        noise = rng.normal(0, 0.05 * level, size=weeks)
        series[f"S{i}"] = np.clip(level + trend + season + noise, 0, None).round()
    return long_frame(series, "2021-01-04", "W-MON")


def noise_daily(n_series: int = 4, days: int = 200, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return long_frame(
        {f"N{i}": rng.poisson(20, size=days) for i in range(n_series)}, "2023-03-01", "D"
    )


def weekly_cycle_daily(n_series: int = 4, days: int = 240, seed: int = 2) -> pd.DataFrame:
    """A daily series with a strong weekday pattern and a level that drifts upward."""
    rng = np.random.default_rng(seed)
    t = np.arange(days)
    weekday = np.array([1.0, 1.1, 1.2, 1.1, 1.4, 0.4, 0.2])
    series = {}
    for i in range(n_series):
        level = 30 * (i + 1) * (1 + t / days)
        series[f"D{i}"] = rng.poisson(level * weekday[t % 7])
    return long_frame(series, "2024-01-01", "D")


def seasonal_monthly_known_noise(
    n_series: int = 12, months: int = 144, sigma: float = 8.0, seed: int = 4
) -> pd.DataFrame:
    """Level + yearly cycle + Gaussian noise of standard deviation ``sigma``: the best
    forecast errs by about ``sigma``, so an 80 % interval is about +-1.28 sigma wide."""
    rng = np.random.default_rng(seed)
    t = np.arange(months)
    series = {}
    for i in range(n_series):
        level = 100 + 10 * i
        season = 25 * np.sin(2 * np.pi * t / 12 + i)
        series[f"K{i:02d}"] = level + season + rng.normal(0, sigma, size=months)
    return long_frame(series, "2012-01-01", "MS")
