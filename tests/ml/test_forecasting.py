import math

import numpy as np
import pandas as pd
import pytest

from ml.features import demand_series
from ml.forecasting import (
    SEASONAL_NAIVE,
    evaluate_series,
    forecast_products,
    summarize,
)


def long_frame(series: dict[str, np.ndarray], start: str, freq: str) -> pd.DataFrame:
    frames = [
        pd.DataFrame(
            {
                "sku": sku,
                "period": pd.date_range(start, periods=len(values), freq=freq),
                "quantity": values.astype("float64"),
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


def test_seasonal_weekly_series_are_forecast_better_than_seasonal_naive():
    forecasts = forecast_products(seasonal_weekly(), "W", horizon=8)

    assert all(f.model != SEASONAL_NAIVE for f in forecasts)
    assert all(f.mae < f.naive_mae for f in forecasts)
    assert np.mean([f.mae / f.naive_mae for f in forecasts]) < 0.8


def test_daily_series_with_a_weekly_cycle_beat_seasonal_naive():
    forecasts = forecast_products(weekly_cycle_daily(), "D", horizon=7)

    assert all(f.mae < f.naive_mae for f in forecasts)


def test_pure_noise_falls_back_to_seasonal_naive_or_beats_it():
    forecasts = forecast_products(noise_daily(), "D", horizon=7)

    for forecast in forecasts:
        assert forecast.model == SEASONAL_NAIVE or forecast.mae < forecast.naive_mae
        assert forecast.mae <= forecast.naive_mae


def test_chosen_model_is_never_worse_than_seasonal_naive_on_a_mixed_set():
    rng = np.random.default_rng(5)
    weeks = 120
    t = np.arange(weeks)
    mixed = {
        "noise": rng.poisson(5, size=weeks),
        "intermittent": rng.poisson(0.3, size=weeks),
        "steps": np.repeat([10, 40, 15], 40),
        "trend": 3 * t + rng.normal(0, 4, size=weeks),
        "season": 100 + 60 * np.sin(2 * np.pi * t / 52) + rng.normal(0, 5, size=weeks),
        "zeros": np.zeros(weeks),
    }
    series = long_frame({k: np.clip(v, 0, None) for k, v in mixed.items()}, "2022-01-03", "W-MON")

    forecasts = forecast_products(series, "W", horizon=6)

    assert len(forecasts) == len(mixed)
    for forecast in forecasts:
        if forecast.sku == "zeros":
            # Never sold: no history to backtest, a zero forecast.
            assert forecast.mae is None
            assert [v for _, v in forecast.points] == [0.0] * 6
        else:
            assert forecast.mae <= forecast.naive_mae


def test_intervals_contain_the_points_and_are_not_negative():
    forecasts = forecast_products(seasonal_weekly(n_series=3), "W", horizon=8)
    forecasts += forecast_products(noise_daily(n_series=2), "D", horizon=5)

    for forecast in forecasts:
        values = [value for _, value in forecast.points]
        assert all(
            0 <= low <= v <= high
            for low, v, high in zip(forecast.lower, values, forecast.upper, strict=True)
        )
        assert any(high > low for low, high in zip(forecast.lower, forecast.upper, strict=True))


def test_forecast_covers_the_horizon_with_the_following_period_starts():
    weekly = forecast_products(seasonal_weekly(n_series=2, weeks=60), "W", horizon=4)[0]
    monthly_lines = pd.DataFrame(
        {
            "date": pd.date_range("2020-01-01", periods=40, freq="MS") + pd.Timedelta(days=14),
            "sku": "M",
            "quantity": np.arange(40) % 12 + 1,
        }
    )
    monthly = forecast_products(monthly_lines, "M", horizon=3)[0]

    last_week = pd.Timestamp("2021-01-04") + pd.Timedelta(weeks=59)
    expected = [(last_week + pd.Timedelta(weeks=h)).date().isoformat() for h in (1, 2, 3, 4)]
    assert [period for period, _ in weekly.points] == expected
    assert len(weekly.lower) == len(weekly.upper) == weekly.horizon == 4
    assert [period for period, _ in monthly.points] == ["2023-05-01", "2023-06-01", "2023-07-01"]


def test_monthly_repeating_pattern_is_continued():
    lines = pd.DataFrame(
        {
            "date": pd.date_range("2020-01-01", periods=48, freq="MS"),
            "sku": "M",
            "quantity": np.arange(48) % 12 + 1,
        }
    )

    forecast = forecast_products(lines, "M", horizon=3)[0]

    np.testing.assert_allclose([v for _, v in forecast.points], [1, 2, 3], atol=0.5)


def test_short_history_uses_naive_fallback_without_metrics():
    series = long_frame(
        {"old": np.arange(1, 61, dtype=float), "new": np.r_[np.zeros(55), [4, 5, 6, 7, 9]]},
        "2023-01-02",
        "W-MON",
    )

    forecasts = {f.sku: f for f in forecast_products(series, "W", horizon=8)}

    young = forecasts["new"]
    assert young.model == SEASONAL_NAIVE
    assert [v for _, v in young.points] == [9.0] * 8
    assert young.mae is young.mase is young.naive_mae is None
    assert forecasts["old"].mae is not None


def test_series_too_short_for_any_backtest_still_get_a_forecast():
    series = long_frame({"a": np.array([3.0, 4.0, 5.0])}, "2024-01-01", "D")

    forecast = forecast_products(series, "D", horizon=2)[0]

    assert forecast.model == SEASONAL_NAIVE
    assert [v for _, v in forecast.points] == [5.0, 5.0]
    assert forecast.mae is None


def test_forecasts_are_deterministic():
    series = seasonal_weekly(n_series=3, weeks=110)

    first = forecast_products(series, "W", 8, backtest_origins=2)

    assert first == forecast_products(series, "W", 8, backtest_origins=2)


def test_raw_lines_are_aggregated_like_demand_series():
    rng = np.random.default_rng(3)
    dates = pd.Timestamp("2023-01-02") + pd.to_timedelta(rng.integers(0, 500, 3000), unit="D")
    lines = pd.DataFrame({"date": dates, "sku": rng.choice(["a", "b"], 3000), "quantity": 1})

    from_lines = forecast_products(lines, "W", 4, backtest_origins=1)
    from_series = forecast_products(demand_series(lines, "W"), "W", 4, backtest_origins=1)

    assert from_lines == from_series


def test_progress_reports_until_done():
    calls = []

    forecast_products(
        seasonal_weekly(n_series=2, weeks=80), "W", 4, progress=lambda *a: calls.append(a)
    )

    assert calls[0][0] == 0
    assert calls[-1][0] == calls[-1][1] > 0
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


def test_empty_series_give_no_forecasts_and_bad_arguments_raise():
    empty = pd.DataFrame({"sku": [], "period": pd.to_datetime([]), "quantity": []})

    assert forecast_products(empty, "W", 4) == []
    with pytest.raises(ValueError, match="freq"):
        forecast_products(empty, "Y", 4)
    with pytest.raises(ValueError, match="horizon"):
        forecast_products(empty, "W", 0)
    with pytest.raises(ValueError, match="quantity"):
        forecast_products(pd.DataFrame({"sku": [], "date": []}), "W", 4)


def test_evaluate_series_scores_the_held_out_periods():
    rows = evaluate_series(seasonal_weekly(n_series=4), "W", horizon=8)

    assert [r["sku"] for r in rows] == ["S0", "S1", "S2", "S3"]
    for row in rows:
        assert set(row) == {
            "sku",
            "model",
            "mae",
            "wape",
            "mase",
            "naive_mae",
            "naive_wape",
            "naive_mase",
            "ratio",
        }
        assert row["ratio"] == pytest.approx(row["mae"] / row["naive_mae"])
    assert summarize(rows)["geometric_mean_ratio"] < 1.0


def test_summarize_takes_the_geometric_mean_and_guards_zeros():
    rows = [
        {"ratio": 0.5},
        {"ratio": 2.0},
        {"ratio": 0.25},
        {"ratio": None},
        {"ratio": 1.0},
    ]

    summary = summarize(rows)

    assert summary["series"] == 5
    assert summary["scored"] == 4
    assert summary["geometric_mean_ratio"] == pytest.approx(math.pow(0.25, 0.25))
    assert summary["beaten"] == 2
    assert summary["worse"] == 1
    assert summary["worst_ratio"] == 2.0
    assert summarize([{"ratio": 0.0}])["geometric_mean_ratio"] == pytest.approx(1e-6)
    assert summarize([])["geometric_mean_ratio"] is None


def elec_equip_lines() -> pd.DataFrame:
    """Euro-area electrical equipment orders, monthly 1995-2016: a real seasonal series
    shipped inside the statsmodels wheel, so no download."""
    from statsmodels.datasets import elec_equip

    orders = elec_equip.load_pandas().data.iloc[:, 0]
    return pd.DataFrame({"date": orders.index, "sku": "elec_equip", "quantity": orders.to_numpy()})


def test_real_monthly_orders_beat_seasonal_naive_out_of_sample():
    rows = evaluate_series(elec_equip_lines(), "M", horizon=12)

    assert rows[0]["model"] != SEASONAL_NAIVE
    assert rows[0]["ratio"] < 0.8
