"""Synthetic order lines for benchmarking and exercising the ML core (no Django).

Demand has a weekly cycle (weekends quieter), a yearly cycle that differs by product (some
sell in summer, some in winter) and mild growth. Customers differ by orders of magnitude in
how often they buy (lognormal rates), how much (lognormal basket multipliers) and when they
were active (staggered starts, some churned), so RFM segmentation has real structure.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

START = pd.Timestamp("2023-01-02")
WEEKDAY_FACTOR = np.array([1.1, 1.15, 1.1, 1.05, 1.2, 0.75, 0.55])  # Monday first
MEAN_LINES_PER_ORDER = 2.5


def synthetic_order_lines(
    n_customers: int = 50_000,
    n_lines: int = 1_000_000,
    n_products: int = 500,
    days: int = 730,
    seed: int = 0,
) -> pd.DataFrame:
    """Order lines with columns ``order_id, customer_id, date, sku, quantity, unit_price``.

    Vectorised throughout: about a second per million lines.
    """
    rng = np.random.default_rng(seed)
    day_weight = _day_weights(days)
    order_sizes = 1 + rng.poisson(MEAN_LINES_PER_ORDER - 1, size=n_lines)
    line_order = np.repeat(np.arange(n_lines), order_sizes)[:n_lines]
    n_orders = int(line_order[-1]) + 1 if n_lines else 0

    activity, basket, first_day, last_day = _customers(rng, n_customers, days)
    order_customer = rng.choice(n_customers, size=n_orders, p=activity / activity.sum())
    order_day = _days_within(rng, day_weight, first_day[order_customer], last_day[order_customer])

    line_day = order_day[line_order]
    line_customer = order_customer[line_order]
    popularity, phase, amplitude, base_price = _products(rng, n_products)
    product = _products_by_day(rng, line_day, days, popularity, phase, amplitude)
    quantity = 1 + rng.poisson(basket[line_customer] - 1 + 0.5 * (popularity[product] > 2))
    price = base_price[product] * rng.uniform(0.95, 1.05, size=n_lines)
    skus = np.array([f"SKU-{i:05d}" for i in range(n_products)], dtype=object)
    return pd.DataFrame(
        {
            "order_id": line_order.astype("int64") + 1,
            "customer_id": line_customer.astype("int64") + 1,
            "date": START + pd.to_timedelta(line_day, unit="D"),
            "sku": skus[product],
            "quantity": quantity.astype("int64"),
            "unit_price": np.round(price, 2),
        }
    )


def _day_weights(days: int) -> np.ndarray:
    day = np.arange(days)
    weekday = WEEKDAY_FACTOR[(START.dayofweek + day) % 7]
    yearly = 1.0 + 0.35 * np.sin(2 * np.pi * (day - 80) / 365.25)
    growth = 1.0 + 0.25 * day / max(days, 1)
    return weekday * yearly * growth


def _customers(
    rng: np.random.Generator, n: int, days: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    activity = rng.lognormal(mean=0.0, sigma=1.3, size=n)
    basket = np.clip(rng.lognormal(mean=0.3, sigma=0.6, size=n), 1.0, 25.0)
    # New customers keep arriving; about a third churn some time after arriving.
    first_day = (rng.beta(1.0, 1.6, size=n) * days * 0.95).astype(np.int64)
    churned = rng.random(n) < 0.35
    life = rng.exponential(days / 4, size=n).astype(np.int64) + 1
    last_day = np.where(churned, np.minimum(first_day + life, days - 1), days - 1)
    return activity, basket, first_day, last_day


def _days_within(
    rng: np.random.Generator, weight: np.ndarray, first: np.ndarray, last: np.ndarray
) -> np.ndarray:
    """Draw one day per order from the seasonal day weights, restricted to [first, last]."""
    cdf = np.concatenate([[0.0], np.cumsum(weight)])
    low, high = cdf[first], cdf[last + 1]
    u = low + rng.random(len(first)) * (high - low)
    return np.clip(np.searchsorted(cdf, u, side="right") - 1, first, last)


def _products(
    rng: np.random.Generator, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    popularity = 1.0 / np.arange(1, n + 1) ** 0.9
    popularity = popularity / popularity.mean()
    phase = rng.uniform(0, 2 * np.pi, size=n)
    amplitude = rng.choice([0.0, 0.3, 0.7], size=n, p=[0.3, 0.4, 0.3])
    base_price = np.round(rng.lognormal(mean=3.0, sigma=0.8, size=n), 2) + 0.5
    return popularity, phase, amplitude, base_price


def _products_by_day(
    rng: np.random.Generator,
    line_day: np.ndarray,
    days: int,
    popularity: np.ndarray,
    phase: np.ndarray,
    amplitude: np.ndarray,
) -> np.ndarray:
    """Sample a product per line from that day's product mix: one flat CDF over all
    (day, product) cells, day d occupying [d, d + 1), so a single searchsorted draws all."""
    day = np.arange(days)[:, None]
    mix = popularity * (1.0 + amplitude * np.sin(2 * np.pi * day / 365.25 + phase))
    cdf = np.cumsum(mix, axis=1)
    cdf = cdf / cdf[:, -1:] + day
    target = line_day + rng.random(len(line_day))
    flat = np.searchsorted(cdf.ravel(), target, side="right")
    return np.clip(flat - line_day * len(popularity), 0, len(popularity) - 1)
