"""`manage.py evaluate_forecasts --csv FILE`: out-of-sample check of the forecaster on any data.

Reads ``date,sku,quantity``, holds out the last ``horizon`` periods of every series, lets the
forecaster choose its model on the rest, and scores the choice and seasonal naive on the
held-out periods. Prints one JSON line per series, then one JSON summary line.
"""

from __future__ import annotations

import json

import pandas as pd
from django.core.management.base import CommandError

from aktina.core.commands import OneLineErrorsCommand
from ml.forecasting import evaluate_series, summarize
from ml.management.commands.refresh_ml import positive_horizon

COLUMNS = ("date", "sku", "quantity")


class Command(OneLineErrorsCommand):
    help = (
        "Backtest the forecaster on a CSV of date,sku,quantity: one JSON line per series "
        "(chosen model, its MAE/WAPE/MASE, seasonal naive's, ratio), then a JSON summary."
    )

    def add_arguments(self, parser):
        parser.add_argument("--csv", required=True, help="CSV file with date,sku,quantity.")
        parser.add_argument("--freq", choices=["D", "W", "M"], default="W")
        parser.add_argument("--horizon", type=positive_horizon, default=8)

    def handle(self, *args, csv: str, freq: str = "W", horizon: int = 8, **options):
        frame = read_series(csv)
        rows = evaluate_series(frame, freq, horizon)
        for row in rows:
            self.stdout.write(json.dumps(row))
        summary = summarize(rows) | {"freq": freq, "horizon": horizon}
        self.stdout.write(json.dumps({"summary": summary}))


def read_series(path: str) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, dtype={"sku": "str"}, skipinitialspace=True)
    except FileNotFoundError as exc:
        raise CommandError(f"cannot read {path}: no such file") from exc
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise CommandError(f"cannot read {path}: {str(exc).splitlines()[0]}") from exc
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise CommandError(
            f"{path} lacks column(s) {', '.join(missing)}; expected date,sku,quantity"
        )
    frame = frame[list(COLUMNS)]
    dates = pd.to_datetime(frame["date"], format="ISO8601", errors="coerce")
    quantity = pd.to_numeric(frame["quantity"], errors="coerce")
    bad = dates.isna() | quantity.isna() | frame["sku"].isna()
    if bad.any():
        first = int(bad.to_numpy().argmax())
        raise CommandError(
            f"{path}: {int(bad.sum())} row(s) with a bad date, sku or quantity, the first on "
            f"line {first + 2}: {frame.iloc[first].to_dict()}"
        )
    return pd.DataFrame({"date": dates, "sku": frame["sku"], "quantity": quantity})
