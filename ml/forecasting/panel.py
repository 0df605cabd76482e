"""All products on one period grid, plus argument checks and progress counting."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.features import DEMAND_OUTPUT, PANDAS_FREQ, Freq, check_freq, demand_series, to_wide

ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class Panel:
    """values[i, t] is product i's demand in period t."""

    skus: np.ndarray
    periods: pd.DatetimeIndex
    values: np.ndarray
    starts: np.ndarray  # index of each product's first non-zero period (T if none)

    @property
    def length(self) -> int:
        return self.values.shape[1]


def check_arguments(freq: str, horizon: int, backtest_origins: int) -> None:
    check_freq(freq)
    if horizon < 1:
        raise ValueError(f"horizon must be at least 1, got {horizon}")
    if backtest_origins < 2:
        # One origin to choose on and one to score the choice on: nested rolling origin.
        raise ValueError(f"backtest_origins must be at least 2, got {backtest_origins}")


def panel_build(series: pd.DataFrame, freq: Freq) -> Panel:
    if "period" not in series.columns and "date" in series.columns:
        series = demand_series(series, freq)
    if series.empty:
        return Panel(
            np.array([], dtype=object), pd.DatetimeIndex([]), np.empty((0, 0)), np.array([], int)
        )
    skus, periods, values = to_wide(series[list(DEMAND_OUTPUT)])
    # A long frame that skipped empty periods still lands on a complete grid.
    grid = pd.date_range(periods.min(), periods.max(), freq=PANDAS_FREQ[freq])
    if len(grid) != len(periods) or not grid.equals(periods):
        frame = pd.DataFrame(values, columns=periods).reindex(columns=grid, fill_value=0.0)
        periods, values = grid, frame.to_numpy(dtype="float64")
    return Panel(skus.astype(str), periods, values, first_sale(values))


def first_sale(values: np.ndarray) -> np.ndarray:
    sold = values != 0
    return np.where(sold.any(axis=1), sold.argmax(axis=1), values.shape[1])


def panel_slice(panel: Panel, end: int) -> Panel:
    """The panel as it was known before period ``end``."""
    values = panel.values[:, :end]
    return Panel(panel.skus, panel.periods[:end], values, first_sale(values))


def future_periods(panel: Panel, freq: Freq, horizon: int) -> pd.DatetimeIndex:
    return pd.date_range(panel.periods[-1], periods=horizon + 1, freq=PANDAS_FREQ[freq])[1:]


class Progress:
    def __init__(self, callback: ProgressCallback | None, total: int) -> None:
        self.callback, self.total, self.done = callback, total, 0
        if callback is not None:
            callback(0, total)

    def step(self) -> None:
        self.done = min(self.done + 1, self.total)
        if self.callback is not None:
            self.callback(self.done, self.total)
