"""`manage.py evaluate_forecasts --csv FILE`: out-of-sample check of the forecaster on any data.

Reads ``date,sku,quantity`` (an optional ``source`` column says where each series came from)
and evaluates every series on its own span at many rolling origins: at each, the forecaster
sees only the data before it, and its forecast and seasonal naive's are scored on the
``horizon`` periods after it. Prints a table (default) or one JSON line per series and a JSON
summary line (``--format jsonl``). Series run in parallel, one process per core.

Heavy libraries (pandas, scikit-learn, statsmodels) are imported in ``handle``, after the
arguments are parsed, so a mistyped option answers at once.
"""

from __future__ import annotations

import argparse
import json
import sys

from django.core.management.base import CommandError

from aktina.core.commands import OneLineErrorsCommand
from ml.models import MAX_HORIZON

COLUMNS = ("date", "sku", "quantity")
# ml.forecasting.selection.CANDIDATES, kept here for parsing (a test holds them equal).
MODELS = ("seasonal_naive", "exp_smoothing", "theta", "ensemble", "gradient_boosting")
# Kept here, not imported, so parsing needs nothing heavy (ml.forecasting.evaluation has
# the same default; a test holds them equal).
MAX_EVALUATION_ORIGINS = 12


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def model_list(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in MODELS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown model(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(MODELS)}"
        )
    return names


def horizon_int(text: str) -> int:
    value = positive_int(text)
    if value > MAX_HORIZON:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_HORIZON}, got {value}")
    return value


class Command(OneLineErrorsCommand):
    help = (
        "Evaluate the forecaster on a CSV of date,sku,quantity at many rolling origins, each "
        "series on its own span: a table of series (origins, geometric-mean MAE ratio to "
        "seasonal naive with p10-p90 over origins, MASE, share of origins worse than naive, "
        "80 % interval coverage, chosen models) and a summary; --format jsonl for one JSON "
        "line per series and a JSON summary line."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--csv",
            required=True,
            help="CSV with date,sku,quantity (and optionally source, printed with the table).",
        )
        parser.add_argument("--freq", choices=["D", "W", "M"], default="W")
        parser.add_argument("--horizon", type=horizon_int, default=8)
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
        parser.add_argument("--format", choices=["table", "jsonl"], default="table")
        parser.add_argument(
            "--models",
            type=model_list,
            default=MODELS,
            help="Comma-separated candidates the forecaster chooses from (default: all, "
            f"{','.join(MODELS)}). gradient_boosting is most of the CPU time of a series "
            "evaluated on its own.",
        )
        parser.add_argument(
            "--workers",
            type=positive_int,
            help="Processes evaluating series in parallel (default: one per core, at most 2).",
        )

    def handle(
        self, *args, csv: str, freq="W", horizon=8, origins=MAX_EVALUATION_ORIGINS, step=None,
        format="table", workers=None, models=MODELS, **options,
    ):  # fmt: skip
        from ml.forecasting import evaluate_series, summarize
        from ml.forecasting.evaluation import default_workers

        frame, sources = read_series(csv)
        bar = self._progress_bar()
        try:
            rows = evaluate_series(
                frame, freq, horizon, max_origins=origins, step=step, progress=bar,
                workers=workers or default_workers(), candidates=models,
            )  # fmt: skip
        finally:
            if bar is not None:
                bar.close()
        summary = summarize(rows) | {
            "freq": freq, "horizon": horizon, "step": step or horizon, "models": list(models),
        }  # fmt: skip
        if summary["scored"] == 0:
            reasons = "; ".join(f"{r['sku']}: {r['unscored']}" for r in rows[:3])
            more = f" (and {len(rows) - 3} more)" if len(rows) > 3 else ""
            raise CommandError(f"nothing to score in {csv}: {reasons}{more}")
        if format == "jsonl":
            for row in rows:
                self.stdout.write(json.dumps(row))
            self.stdout.write(json.dumps({"summary": summary}))
            return
        for line in table(rows, summary, sources):
            self.stdout.write(line)

    def _progress_bar(self):
        # Only for a person watching: a pipe or a log file gets the table alone.
        if not sys.stderr.isatty() or not self.stdout.isatty():
            return None
        from tqdm import tqdm

        bar = tqdm(total=1, desc="series", unit="series", file=sys.stderr, leave=False)

        def progress(done: int, total: int) -> None:
            bar.total = max(total, 1)
            bar.n = done
            bar.refresh()

        progress.close = bar.close
        return progress


def read_series(path: str):
    """(``date, sku, quantity`` frame, {sku: source}) from a CSV, or a one-line CommandError."""
    import pandas as pd

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
    sources = {}
    if "source" in frame.columns:
        firsts = frame.dropna(subset=["sku", "source"]).groupby("sku")["source"].first()
        sources = {str(k): str(v) for k, v in firsts.items()}
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
    return pd.DataFrame({"date": dates, "sku": frame["sku"], "quantity": quantity}), sources


# --- the table ------------------------------------------------------------------------------

SHORT_MODELS = {
    "seasonal_naive": "naive",
    "exp_smoothing": "ets",
    "theta": "theta",
    "ensemble": "ens",
    "gradient_boosting": "gbm",
}


def _ratio(value) -> str:
    return "-" if value is None else f"{value:.2f}"


def _share(value) -> str:
    return "-" if value is None else f"{value:.0%}"


def table(rows: list[dict], summary: dict, sources: dict[str, str]) -> list[str]:
    """The evaluation as lines a person reads: ratios to 2 decimals, shares in whole %."""
    width = max([6, *(len(r["sku"]) for r in rows)])
    head = (
        f"{'series':<{width}}  {'span':<17}  {'origins':>7}  {'ratio':>5}  {'p10-p90':>9}  "
        f"{'MASE':>5}  {'worse':>5}  {'cover':>5}  models"
    )
    lines = [head]
    for r in rows:
        span = f"{r['first'][:7]}..{r['last'][:7]}"
        if r["ratio"] is None:
            lines.append(f"{r['sku']:<{width}}  {span:<17}  {'-':>7}  unscored: {r['unscored']}")
            continue
        spread = f"{r['ratio_p10']:.2f}-{r['ratio_p90']:.2f}"
        models = ", ".join(
            f"{SHORT_MODELS.get(m, m)} {n}"
            for m, n in sorted(r["models"].items(), key=lambda kv: (-kv[1], kv[0]))
        )
        lines.append(
            f"{r['sku']:<{width}}  {span:<17}  {r['origins']:>7}  {_ratio(r['ratio']):>5}  "
            f"{spread:>9}  {_ratio(r['mase']):>5}  {_share(r['worse_share']):>5}  "
            f"{_share(r['coverage']):>5}  {models}"
        )
    s = summary
    lines += [
        "",
        f"{s['series']} series, scored {s['scored']}, unscored: {s['unscored']} "
        f"(freq {s['freq']}, horizon {s['horizon']}, origins {s['step']} apart, models "
        f"{', '.join(SHORT_MODELS.get(m, m) for m in s['models'])})",
        f"geometric-mean MAE ratio to seasonal naive: {_ratio(s['geometric_mean_ratio'])} "
        f"(p10-p90 across series {_ratio(s['ratio_p10'])}-{_ratio(s['ratio_p90'])}, worst "
        f"{_ratio(s['worst_ratio'])})",
        f"worse than naive: {s['worse']} of {s['scored']} ({_share(s['worse_share'])}); "
        f"beaten: {s['beaten']}",
        f"{s['interval_level']:.0%} interval coverage of scored points: {_share(s['coverage'])}",
        "ratio: geometric mean over origins of MAE / seasonal naive's MAE (< 1 beats naive); "
        "worse: share of origins worse than naive; models: how often each was chosen.",
    ]
    if sources:
        lines += ["", "sources:"]
        lines += [f"  {r['sku']:<{width}}  {sources.get(r['sku'], '-')}" for r in rows]
    return lines
