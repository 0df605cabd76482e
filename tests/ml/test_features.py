import numpy as np
import pandas as pd
import pytest

from ml.features import (
    calendar_features,
    demand_series,
    lag_features,
    period_start,
    rfm_table,
    rolling_mean_features,
)


def hand_made_lines() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "order_id": [1, 1, 2, 3, 4],
            "customer_id": [10, 10, 10, 20, 30],
            "date": pd.to_datetime(
                ["2024-01-01", "2024-01-01", "2024-01-05", "2024-01-03", "2024-01-10"]
            ),
            "sku": ["A", "B", "A", "B", "A"],
            "quantity": [2, 1, 3, 5, 1],
            "unit_price": [10.0, 4.5, 10.0, 2.0, 7.25],
        }
    )


def test_rfm_table_matches_hand_computed_figures():
    rfm = rfm_table(hand_made_lines(), as_of=pd.Timestamp("2024-01-11"))

    assert list(rfm.index) == [10, 20, 30]
    assert rfm.index.name == "customer_id"
    assert rfm.loc[10].tolist() == [6, 2, 2 * 10.0 + 4.5 + 3 * 10.0]
    assert rfm.loc[20].tolist() == [8, 1, 10.0]
    assert rfm.loc[30].tolist() == [1, 1, 7.25]


def test_rfm_table_defaults_as_of_to_day_after_last_order():
    rfm = rfm_table(hand_made_lines())

    assert rfm["recency_days"].to_dict() == {10: 6, 20: 8, 30: 1}


def test_rfm_table_accepts_timezone_aware_dates_and_as_of():
    lines = hand_made_lines()
    lines["date"] = lines["date"].dt.tz_localize("UTC")

    rfm = rfm_table(lines, as_of=pd.Timestamp("2024-01-11", tz="UTC"))

    assert rfm["recency_days"].to_dict() == {10: 6, 20: 8, 30: 1}


def test_rfm_table_names_every_missing_column():
    lines = hand_made_lines().drop(columns=["order_id", "unit_price"])

    with pytest.raises(ValueError, match="order_id, unit_price"):
        rfm_table(lines)


def test_rfm_table_of_no_lines_is_empty():
    rfm = rfm_table(hand_made_lines().iloc[0:0])

    assert rfm.empty
    assert list(rfm.columns) == ["recency_days", "frequency", "monetary"]


def test_demand_series_fills_periods_without_sales_with_zero():
    lines = pd.DataFrame(
        {
            "date": pd.to_datetime(["2024-01-01", "2024-01-03", "2024-01-17", "2024-01-09"]),
            "sku": ["A", "A", "A", "B"],
            "quantity": [1, 2, 4, 7],
        }
    )

    demand = demand_series(lines, "W")

    weeks = list(pd.to_datetime(["2024-01-01", "2024-01-08", "2024-01-15"]))
    assert list(demand.columns) == ["sku", "period", "quantity"]
    assert demand[demand.sku == "A"]["period"].tolist() == weeks
    assert demand[demand.sku == "A"]["quantity"].tolist() == [3.0, 0.0, 4.0]
    assert demand[demand.sku == "B"]["period"].tolist() == weeks
    assert demand[demand.sku == "B"]["quantity"].tolist() == [0.0, 7.0, 0.0]


def test_demand_series_labels_periods_by_their_first_day():
    dates = pd.Series(pd.to_datetime(["2024-02-29 17:30", "2024-03-03 00:00", "2024-03-04 08:00"]))

    assert period_start(dates, "W").dt.strftime("%Y-%m-%d").tolist() == [
        "2024-02-26",
        "2024-02-26",
        "2024-03-04",
    ]
    assert period_start(dates, "M").dt.strftime("%Y-%m-%d").tolist() == [
        "2024-02-01",
        "2024-03-01",
        "2024-03-01",
    ]
    assert period_start(dates, "D").dt.strftime("%Y-%m-%d").tolist() == [
        "2024-02-29",
        "2024-03-03",
        "2024-03-04",
    ]


def test_demand_series_of_no_lines_is_empty():
    demand = demand_series(hand_made_lines().iloc[0:0], "M")

    assert demand.empty
    assert list(demand.columns) == ["sku", "period", "quantity"]


def test_demand_series_names_missing_columns_and_rejects_unknown_freq():
    with pytest.raises(ValueError, match="sku, quantity"):
        demand_series(pd.DataFrame({"date": []}), "W")
    with pytest.raises(ValueError, match="freq"):
        demand_series(hand_made_lines(), "Q")


def test_lag_features_look_back_and_are_nan_before_the_start():
    values = np.array([[1.0, 2.0, 3.0, 4.0], [10.0, 20.0, 30.0, 40.0]])

    lags = lag_features(values, np.array([0, 1]), np.array([3, 1]), lags=(1, 2))

    np.testing.assert_array_equal(lags, [[3.0, 2.0], [10.0, np.nan]])


def test_rolling_mean_features_average_the_known_window():
    values = np.array([[1.0, 2.0, 3.0, 4.0]])

    means = rolling_mean_features(values, np.array([0, 0, 0]), np.array([4, 1, 0]), windows=(2,))

    np.testing.assert_array_equal(means[:, 0], [3.5, 1.0, np.nan])


def test_calendar_features_depend_on_frequency():
    days = pd.date_range("2024-01-01", periods=3, freq="D")

    daily = calendar_features(days, "D")
    monthly = calendar_features(days, "M")

    assert list(daily.columns) == ["month", "week_of_year", "day_of_week"]
    assert daily["day_of_week"].tolist() == [0.0, 1.0, 2.0]
    assert list(monthly.columns) == ["month"]
