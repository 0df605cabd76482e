"""Feature tables built from order lines: RFM per customer, demand per product and period.

Pure pandas/numpy: no Django import, so the same code runs in management commands, jobs,
benchmarks and tests without a database.

Order-line frames have the columns ``order_id, customer_id, date, sku, quantity, unit_price``.
Dates may be ``datetime64`` (naive or tz-aware), ``datetime.date`` objects or ISO strings;
tz-aware values keep their wall-clock time and lose the zone, so a day boundary is the one
the data was recorded in.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

Freq = Literal["D", "W", "M"]

RFM_COLUMNS = ("order_id", "customer_id", "date", "quantity", "unit_price")
DEMAND_COLUMNS = ("date", "sku", "quantity")
RFM_OUTPUT = ("recency_days", "frequency", "monetary")
DEMAND_OUTPUT = ("sku", "period", "quantity")

# Periods are labelled by their first day: weeks start on Monday, months on the 1st.
PANDAS_FREQ: dict[str, str] = {"D": "D", "W": "W-MON", "M": "MS"}
# D uses the weekly cycle: two years of daily data hold ~100 weekly cycles but only two
# yearly ones, too few to estimate a 365-day season.
SEASON_LENGTHS: dict[str, int] = {"D": 7, "W": 52, "M": 12}


def single_threaded() -> threadpool_limits:
    """Limit OpenMP and BLAS to one thread inside a ``with`` block.

    On the two-core target, with the web server or another job also busy, the two-thread
    OpenMP pools of KMeans and HistGradientBoosting spin against each other: the benchmark
    forecast took 137 s with two threads and 17 s with one under the same load (13 s with
    two threads on an idle machine). One thread is slightly slower idle and never
    pathological.
    """
    return threadpool_limits(limits=1)


def require_columns(frame: pd.DataFrame, columns: Iterable[str], what: str = "lines") -> None:
    """Raise ``ValueError`` naming every column of ``columns`` that ``frame`` lacks."""
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise ValueError(f"{what} is missing required column(s): {', '.join(missing)}")


def check_freq(freq: str) -> None:
    if freq not in PANDAS_FREQ:
        raise ValueError(f"freq must be one of {', '.join(PANDAS_FREQ)}, got {freq!r}")


def to_naive_datetime(values: pd.Series) -> pd.Series:
    """Datetimes without a zone, so arithmetic and grouping never mix zones."""
    if pd.api.types.is_datetime64_any_dtype(values):
        dates = values
    else:
        # ISO8601 accepts date-only and date-time strings mixed in one column, and
        # datetime/date objects as they come from an ORM.
        dates = pd.to_datetime(values, format="ISO8601")
    if dates.dt.tz is not None:
        dates = dates.dt.tz_localize(None)
    return dates


def period_start(dates: pd.Series, freq: Freq) -> pd.Series:
    """First day of the period (day, Monday-started week, month) holding each date."""
    check_freq(freq)
    days = to_naive_datetime(dates).dt.normalize()
    if freq == "W":
        return days - pd.to_timedelta(days.dt.day_of_week, unit="D")
    if freq == "M":
        return days - pd.to_timedelta(days.dt.day - 1, unit="D")
    return days


def rfm_table(lines: pd.DataFrame, as_of: pd.Timestamp | None = None) -> pd.DataFrame:
    """Recency, frequency and monetary value per customer.

    Returns a frame indexed by ``customer_id`` (sorted) with ``recency_days`` (whole days from
    the customer's last order to ``as_of``; default: the latest date in ``lines`` plus one
    day), ``frequency`` (distinct orders) and ``monetary`` (sum of quantity * unit_price).
    Empty input gives an empty frame with those columns.
    """
    require_columns(lines, RFM_COLUMNS)
    if lines.empty:
        empty = pd.DataFrame(
            {
                "recency_days": pd.Series(dtype="int64"),
                "frequency": pd.Series(dtype="int64"),
                "monetary": pd.Series(dtype="float64"),
            }
        )
        empty.index.name = "customer_id"
        return empty
    dates = to_naive_datetime(lines["date"])
    frame = pd.DataFrame(
        {
            "customer_id": lines["customer_id"].to_numpy(),
            "order_id": lines["order_id"].to_numpy(),
            "date": dates.to_numpy(),
            "value": lines["quantity"].to_numpy(dtype="float64")
            * lines["unit_price"].to_numpy(dtype="float64"),
        }
    )
    by_customer = frame.groupby("customer_id", sort=True)
    last_order = by_customer["date"].max()
    # Distinct (customer, order) pairs counted per customer: cheaper than groupby.nunique.
    orders = frame[["customer_id", "order_id"]].drop_duplicates()
    frequency = orders.groupby("customer_id", sort=True).size()
    reference = dates.max() + pd.Timedelta(days=1) if as_of is None else pd.Timestamp(as_of)
    if reference.tzinfo is not None:
        reference = reference.tz_localize(None)
    result = pd.DataFrame(
        {
            # A line after ``as_of`` (clock skew, an order placed during the refresh) is
            # "today", never a negative recency.
            "recency_days": (reference - last_order).dt.days.clip(lower=0).astype("int64"),
            "frequency": frequency.astype("int64"),
            "monetary": by_customer["value"].sum().astype("float64"),
        }
    )
    result.index.name = "customer_id"
    return result


def demand_series(lines: pd.DataFrame, freq: Freq) -> pd.DataFrame:
    """Quantity per product and period, in LONG form: columns ``sku, period, quantity``.

    ``period`` is the first day of the period (see ``PANDAS_FREQ``). Every sku gets every
    period from the globally first to the globally last period with a sale, zero where it sold
    nothing, so all products share one time axis. Rows are sorted by sku, then period;
    ``quantity`` is float64. Only ``date, sku, quantity`` are needed; empty input gives an
    empty frame with those columns.
    """
    check_freq(freq)
    require_columns(lines, DEMAND_COLUMNS)
    if lines.empty:
        return pd.DataFrame(
            {
                "sku": pd.Series(dtype="str"),
                "period": pd.Series(dtype="datetime64[ns]"),
                "quantity": pd.Series(dtype="float64"),
            }
        )
    frame = pd.DataFrame(
        {
            "sku": lines["sku"].astype("str").to_numpy(),
            "period": period_start(lines["date"], freq).to_numpy(),
            "quantity": lines["quantity"].to_numpy(dtype="float64"),
        }
    )
    totals = frame.groupby(["sku", "period"], sort=True)["quantity"].sum()
    skus = totals.index.get_level_values("sku").unique().sort_values()
    periods = totals.index.get_level_values("period")
    grid = pd.date_range(periods.min(), periods.max(), freq=PANDAS_FREQ[freq])
    full = pd.MultiIndex.from_product([skus, grid], names=["sku", "period"])
    return totals.reindex(full, fill_value=0.0).reset_index()


def to_wide(series: pd.DataFrame) -> tuple[np.ndarray, pd.DatetimeIndex, np.ndarray]:
    """Long ``sku, period, quantity`` frame -> (skus, periods, values[n_skus, n_periods]).

    Periods missing for a sku are 0, so a long frame that was not zero-filled still works.
    """
    require_columns(series, DEMAND_OUTPUT, what="series")
    wide = series.pivot_table(
        index="sku", columns="period", values="quantity", aggfunc="sum", fill_value=0.0
    ).sort_index()
    periods = pd.DatetimeIndex(wide.columns)
    return wide.index.to_numpy(dtype=object), periods, wide.to_numpy(dtype="float64")


def calendar_features(periods: pd.DatetimeIndex, freq: Freq) -> pd.DataFrame:
    """Calendar position of each period, the features a tree needs to learn seasonality."""
    check_freq(freq)
    features = {"month": periods.month.to_numpy(dtype="float64")}
    if freq in ("D", "W"):
        features["week_of_year"] = periods.isocalendar().week.to_numpy(dtype="float64")
    if freq == "D":
        features["day_of_week"] = periods.day_of_week.to_numpy(dtype="float64")
    return pd.DataFrame(features, index=periods)


def padded(values: np.ndarray, pad: int) -> np.ndarray:
    """``values`` with ``pad`` NaN columns on the left, so index ``t - k`` never wraps."""
    filler = np.full((values.shape[0], pad), np.nan)
    return np.concatenate([filler, values], axis=1)


def lag_features(
    values: np.ndarray, rows: np.ndarray, targets: np.ndarray, lags: Sequence[int]
) -> np.ndarray:
    """``values[row, target - lag]`` for each (row, target) pair and lag; NaN before the start.

    ``rows`` and ``targets`` are equal-length index arrays; the result has one column per lag.
    """
    pad = max(lags)
    table = padded(values, pad)
    columns = [table[rows, targets - lag + pad] for lag in lags]
    return np.column_stack(columns) if columns else np.empty((len(rows), 0))


def rolling_mean_features(
    values: np.ndarray, rows: np.ndarray, origins: np.ndarray, windows: Sequence[int]
) -> np.ndarray:
    """Mean of the last ``w`` known values before each origin (fewer at the start, NaN at 0).

    ``origins[j]`` is the number of known periods: values[row, :origin] are history.
    """
    cumulative = np.concatenate([np.zeros((values.shape[0], 1)), np.cumsum(values, axis=1)], axis=1)
    columns = []
    for window in windows:
        first = np.maximum(origins - window, 0)
        count = (origins - first).astype("float64")
        total = cumulative[rows, origins] - cumulative[rows, first]
        with np.errstate(invalid="ignore", divide="ignore"):
            columns.append(np.where(count > 0, total / count, np.nan))
    return np.column_stack(columns) if columns else np.empty((len(rows), 0))
