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
from ml.forecasting.theta import theta_forecast
from tests.ml.synthetic import (
    long_frame,
    noise_daily,
    seasonal_monthly_known_noise,
    seasonal_weekly,
    weekly_cycle_daily,
)

# Gradient boosting costs most of an evaluation of a single series; these tests are about
# what is scored, not about which model wins.
FAST = ("seasonal_naive", "exp_smoothing", "theta", "ensemble")


# --- held-out figures ---------------------------------------------------------------------


def pattern_change_monthly(months: int = 96, horizon: int = 6, seed: int = 0) -> np.ndarray:
    """A clean upward trend until three windows before the end, then each month repeats the
    month a year earlier: what the backtest's first window teaches (follow the trend) is
    wrong on the windows after it, where seasonal naive is right."""
    rng = np.random.default_rng(seed)
    t = np.arange(months)
    y = 100 + 3.0 * t + rng.normal(0, 1.0, months)
    for k in range(months - 3 * horizon, months):
        y[k] = y[k - 12] + rng.normal(0, 1.0)
    return y


def test_a_pattern_change_after_the_selection_windows_shows_as_worse_than_naive():
    series = long_frame({"shift": pattern_change_monthly()}, "2015-01-01", "MS")

    forecast = forecast_products(series, "M", horizon=6)[0]

    assert forecast.holdout_ratio > 1.0
    assert forecast.holdout_mae > forecast.holdout_naive_mae
    assert forecast.holdout_mase > forecast.holdout_naive_mase


def test_seasonal_weekly_series_beat_seasonal_naive_on_held_out_windows():
    forecasts = forecast_products(seasonal_weekly(), "W", horizon=8)

    assert all(f.model != SEASONAL_NAIVE for f in forecasts)
    assert np.exp(np.mean([np.log(f.holdout_ratio) for f in forecasts])) < 0.8


def test_daily_series_with_a_weekly_cycle_beat_seasonal_naive_on_held_out_windows():
    forecasts = forecast_products(weekly_cycle_daily(), "D", horizon=7)

    assert all(f.holdout_ratio < 1.0 for f in forecasts)


def test_pure_noise_is_not_reported_as_beaten_by_construction():
    """On noise no model is better than another; the held-out ratio scatters around 1, on
    both sides (the old in-sample figure was never above 1)."""
    forecasts = forecast_products(noise_daily(n_series=8), "D", horizon=7)

    ratios = [f.holdout_ratio for f in forecasts]
    assert all(r is not None for r in ratios)
    assert 0.6 < np.exp(np.mean(np.log(ratios))) < 1.2


def test_never_sold_products_get_zero_forecasts_and_no_figures():
    weeks = 120
    series = long_frame(
        {"zeros": np.zeros(weeks), "steady": np.full(weeks, 5.0)}, "2022-01-03", "W-MON"
    )

    forecasts = {f.sku: f for f in forecast_products(series, "W", horizon=6)}

    assert forecasts["zeros"].holdout_mae is None
    assert [v for _, v in forecasts["zeros"].points] == [0.0] * 6
    assert forecasts["steady"].holdout_ratio == 1.0  # 0 / 0: a tie, not a win


# --- intervals ----------------------------------------------------------------------------


@pytest.mark.parametrize("n_series", [3, 12])
def test_intervals_cover_about_80_percent_of_held_out_points_at_a_known_noise_level(n_series):
    """Seasonal series with Gaussian noise of sd 8, scored at twelve origins each: the
    calibrated 80 % intervals must cover 75-85 % of what happened. With three series a
    quantile per step had 3 x 4 backtest errors, took the 11th largest of 12 and covered
    91 %; pooling the steps (scaled by the error's growth with the step) covers 81 %."""
    series = seasonal_monthly_known_noise(n_series=n_series)

    rows = evaluate_series(series, "M", horizon=6, max_origins=12, candidates=FAST)

    summary = summarize(rows)
    assert sum(r["origins"] for r in rows) == 12 * n_series
    assert 0.75 <= summary["coverage"] <= 0.85


def test_interval_width_follows_each_products_own_noise():
    """Six quiet and six noisy products (noise sd 3 and 12) in one panel share one
    calibration: each product's interval must be scaled by its own errors, so the noisy
    ones come out about four times as wide (a width pooled in units would be equal, a
    width from the panel's largest errors would cover the quiet ones many times over)."""
    quiet = seasonal_monthly_known_noise(n_series=6, sigma=3.0, seed=11)
    noisy = seasonal_monthly_known_noise(n_series=6, sigma=12.0, seed=12)
    noisy["sku"] = "N" + noisy["sku"]

    forecasts = forecast_products(pd.concat([quiet, noisy]), "M", horizon=6)

    width = {f.sku: np.mean(np.subtract(f.upper, f.lower)) for f in forecasts}
    quiet_width = np.mean([w for sku, w in width.items() if not sku.startswith("N")])
    noisy_width = np.mean([w for sku, w in width.items() if sku.startswith("N")])
    assert 2.5 < noisy_width / quiet_width < 6.0
    # About +-1.28 sd for an 80 % interval: 7.7 units for the quiet ones.
    assert 4.0 < quiet_width < 16.0


def test_intervals_widen_with_the_horizon_on_a_random_walk():
    rng = np.random.default_rng(8)
    walks = {f"R{i}": 500 + np.cumsum(rng.normal(0, 5, 200)) for i in range(10)}

    forecasts = forecast_products(long_frame(walks, "2020-01-06", "W-MON"), "W", horizon=8)

    widths = np.array([np.subtract(f.upper, f.lower) for f in forecasts])
    assert widths[:, -1].mean() > 1.5 * widths[:, 0].mean()


# --- models -------------------------------------------------------------------------------


def test_theta_matches_statsmodels_theta_model():
    from statsmodels.tsa.forecasting.theta import ThetaModel

    rng = np.random.default_rng(3)
    t = np.arange(120)
    seasonal = 200 + 0.8 * t + 30 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 4, 120)
    flat = 50 + rng.normal(0, 3, 120)

    for y in (seasonal, flat):
        expected = np.asarray(ThetaModel(y, period=12).fit().forecast(12))
        np.testing.assert_allclose(theta_forecast(y, 12, 12), expected, rtol=0.01)


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


# --- shape of the output ------------------------------------------------------------------


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
    assert young.holdout_mae is young.holdout_mase is young.holdout_naive_mae is None
    assert young.holdout_coverage is None
    assert forecasts["old"].holdout_mae is not None


def test_series_too_short_for_any_backtest_still_get_a_forecast():
    series = long_frame({"a": np.array([3.0, 4.0, 5.0])}, "2024-01-01", "D")

    forecast = forecast_products(series, "D", horizon=2)[0]

    assert forecast.model == SEASONAL_NAIVE
    assert [v for _, v in forecast.points] == [5.0, 5.0]
    assert forecast.holdout_mae is None


def test_forecasts_are_deterministic():
    series = seasonal_weekly(n_series=3, weeks=110)

    first = forecast_products(series, "W", 8, backtest_origins=2)

    assert first == forecast_products(series, "W", 8, backtest_origins=2)


def test_raw_lines_are_aggregated_like_demand_series():
    rng = np.random.default_rng(3)
    dates = pd.Timestamp("2023-01-02") + pd.to_timedelta(rng.integers(0, 500, 3000), unit="D")
    lines = pd.DataFrame({"date": dates, "sku": rng.choice(["a", "b"], 3000), "quantity": 1})

    from_lines = forecast_products(lines, "W", 4, backtest_origins=2)
    from_series = forecast_products(demand_series(lines, "W"), "W", 4, backtest_origins=2)

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
    with pytest.raises(ValueError, match="backtest_origins"):
        forecast_products(empty, "W", 4, backtest_origins=1)
    with pytest.raises(ValueError, match="quantity"):
        forecast_products(pd.DataFrame({"sku": [], "date": []}), "W", 4)


# --- evaluation over many origins ---------------------------------------------------------


def test_evaluate_series_scores_many_origins_with_their_spread():
    rows = evaluate_series(seasonal_weekly(n_series=4), "W", horizon=8, max_origins=4)

    assert [r["sku"] for r in rows] == ["S0", "S1", "S2", "S3"]
    for row in rows:
        assert row["origins"] == 4
        assert row["scored_points"] == 32
        assert sum(row["models"].values()) == 4
        assert row["ratio_p10"] <= row["ratio"] <= row["ratio_p90"]
        assert 0.0 <= row["worse_share"] <= 1.0
        assert 0.0 <= row["coverage"] <= 1.0
    assert summarize(rows)["geometric_mean_ratio"] < 1.0


def test_evaluate_series_reports_a_series_worse_than_naive():
    series = long_frame({"shift": pattern_change_monthly(months=108)}, "2015-01-01", "MS")

    row = evaluate_series(series, "M", horizon=6, max_origins=3, step=1)[0]

    assert row["origins"] == 3
    assert row["worse_share"] > 0
    assert summarize([row])["worse"] == (row["ratio"] > 1)


def test_evaluate_series_without_enough_history_scores_nothing():
    rows = evaluate_series(noise_daily(n_series=1, days=30), "D", horizon=7)

    assert rows[0]["origins"] == 0
    assert rows[0]["ratio"] is None
    assert summarize(rows)["scored"] == 0


def test_summarize_takes_the_geometric_mean_and_guards_zeros():
    rows = [
        {"ratio": 0.5, "coverage": 0.5, "scored_points": 10},
        {"ratio": 2.0, "coverage": 1.0, "scored_points": 30},
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
    assert summary["worse_share"] == 0.25
    assert summary["worst_ratio"] == 2.0
    assert summary["coverage"] == pytest.approx(0.875)
    assert summary["ratio_p10"] < summary["geometric_mean_ratio"] < summary["ratio_p90"]
    assert summarize([{"ratio": 0.0}])["geometric_mean_ratio"] == pytest.approx(1e-6)
    assert summarize([])["geometric_mean_ratio"] is None


def elec_equip_lines() -> pd.DataFrame:
    """Euro-area electrical equipment orders, monthly 1995-2016: a real seasonal series
    shipped inside the statsmodels wheel, so no download."""
    from statsmodels.datasets import elec_equip

    orders = elec_equip.load_pandas().data.iloc[:, 0]
    return pd.DataFrame({"date": orders.index, "sku": "elec_equip", "quantity": orders.to_numpy()})


def test_real_monthly_orders_beat_seasonal_naive_over_many_origins():
    row = evaluate_series(elec_equip_lines(), "M", horizon=12, max_origins=8)[0]

    assert row["origins"] == 8
    assert row["ratio"] < 0.9


# --- each series on its own span (issue 20) -------------------------------------------------


def _monthly_lines(values: np.ndarray, sku: str, start: str) -> pd.DataFrame:
    dates = pd.date_range(start, periods=len(values), freq="MS")
    return pd.DataFrame({"date": dates, "sku": sku, "quantity": values})


def _seasonal(months: int, seed: int, level: float = 100.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(months)
    return level + 0.5 * t + 20 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 4, months)


def test_series_with_different_end_dates_are_each_scored_on_their_own_span():
    """A series ending in 1995 beside one ending in 2015: the early one must not be
    stretched to 2015 with zeros (that scored it mae 0, naive 0, ratio 1, coverage 1)."""
    early = _monthly_lines(_seasonal(120, seed=1), "early", "1986-01-01")
    late = _monthly_lines(_seasonal(120, seed=2, level=300), "late", "2006-01-01")

    lines = pd.concat([early, late])
    rows = {r["sku"]: r for r in evaluate_series(lines, "M", horizon=6, candidates=FAST)}

    row = rows["early"]
    assert row["naive_mae"] > 1.0
    assert 0.1 < row["mae"] < 4 * 4.0  # about the noise level (sd 4) of its own windows
    assert row["coverage"] < 1.0 or row["ratio"] != 1.0
    assert row["origins"] == 12
    assert (row.get("periods"), row.get("last")) == (120, "1995-12-01")
    assert row.get("unscored") is None


def test_a_constant_tail_is_unscored_with_its_reason_and_left_out_of_the_summary():
    moving = _seasonal(120, seed=3)
    tail = np.concatenate([_seasonal(60, seed=4), np.full(60, 7.0)])
    lines = pd.concat(
        [_monthly_lines(moving, "moving", "2010-01-01"), _monthly_lines(tail, "tail", "2010-01-01")]
    )

    rows = evaluate_series(lines, "M", horizon=6, max_origins=6, candidates=FAST)
    rows = {r["sku"]: r for r in rows}
    summary = summarize(list(rows.values()))

    assert rows["tail"]["ratio"] is None
    assert rows["tail"]["coverage"] is None
    assert summary["scored"] == 1
    assert summary["coverage"] == pytest.approx(rows["moving"]["coverage"])
    assert "constant" in rows["tail"]["unscored"]
    assert summary["unscored"] == 1


@pytest.mark.parametrize(
    ("values", "reason"),
    [(np.array([5.0]), "too short: 1 period"), (np.zeros(120), "all zero"),
     (np.full(120, 3.0), "constant")],
)  # fmt: skip
def test_unscoreable_series_say_why(values, reason):
    lines = _monthly_lines(values, "x", "2010-01-01")

    rows = evaluate_series(lines, "M", horizon=6, candidates=FAST)

    assert rows[0]["ratio"] is None
    assert rows[0]["unscored"].startswith(reason)
    assert summarize(rows)["unscored"] == 1
