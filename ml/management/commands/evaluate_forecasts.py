"""`manage.py evaluate_forecasts --csv FILE`: out-of-sample check of the forecaster on any data.

Reads ``date,sku,quantity`` and evaluates every series at many rolling origins: at each, the
forecaster sees only the data before it (model choice and interval calibration included),
and its forecast and seasonal naive's are scored on the ``horizon`` periods after it. Prints
one JSON line per series, then one JSON summary line.
"""

from __future__ import annotations

import argparse
import json

import pandas as pd
from django.core.management.base import CommandError

from aktina.core.commands import OneLineErrorsCommand
from ml.forecasting import evaluate_series, summarize
from ml.forecasting.evaluation import MAX_EVALUATION_ORIGINS
from ml.management.commands.refresh_ml import positive_horizon

COLUMNS = ("date", "sku", "quantity")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


class Command(OneLineErrorsCommand):
    help = (
        "Evaluate the forecaster on a CSV of date,sku,quantity at many rolling origins: one "
        "JSON line per series (geometric-mean MAE ratio to seasonal naive over its origins, "
        "MASE, share of origins worse than naive, interval coverage, chosen models), then a "
        "JSON summary (geometric mean across series with p10/p90, share of series worse "
        "than naive, coverage)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--csv", required=True, help="CSV file with date,sku,quantity.")
        parser.add_argument("--freq", choices=["D", "W", "M"], default="W")
        parser.add_argument("--horizon", type=positive_horizon, default=8)
        parser.add_argument(
            "--origins",
            type=positive_int,
            default=MAX_EVALUATION_ORIGINS,
            help="Most origins per series (default %(default)s); fewer when history is short.",
        )
        parser.add_argument(
            "--step",
            type=positive_int,
            help="Periods between origins (default: the horizon, so scored windows do not "
            "overlap).",
        )

    def handle(
        self, *args, csv: str, freq="W", horizon=8, origins=MAX_EVALUATION_ORIGINS, step=None,
        **options,
    ):  # fmt: skip
        frame = read_series(csv)
        rows = evaluate_series(frame, freq, horizon, max_origins=origins, step=step)
        for row in rows:
            self.stdout.write(json.dumps(row))
        summary = summarize(rows) | {
            "freq": freq,
            "horizon": horizon,
            "step": step or horizon,
        }
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
