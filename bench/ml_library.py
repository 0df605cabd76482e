"""Weigh statsforecast (Nixtla) against our own models on the same held-out origins.

Every model is scored by ``ml.forecasting.evaluate_series`` on the same rolling origins,
with the same conformal intervals: each one alone (forced, no choice), then our selection
with and without the statsforecast candidates. Timings include each process's first
(JIT / import) call.

statsforecast 2.1.1 needs pandas < 3 while the project pins pandas 3.1.1, so this runs in
a separate environment (see docs/architecture.md, "ML"):

    python3.11 -m venv /tmp/sf && /tmp/sf/bin/pip install statsforecast==2.1.1 \
        numpy==2.4.6 scikit-learn==1.9.1 statsmodels==0.15.0 threadpoolctl==3.8.0
    /tmp/sf/bin/python bench/ml_library.py [--only real_monthly]

Prints one JSON line per (data set, model), then a table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ml.forecasting import CANDIDATES, evaluate_series, summarize  # noqa: E402
from ml.forecasting.panel import Panel  # noqa: E402
from tests.ml import synthetic  # noqa: E402

SEASON = {"D": 7, "W": 52, "M": 12}


def _statsforecast_model(name: str, season: int):
    from statsforecast.models import AutoETS, DynamicOptimizedTheta, SeasonalNaive

    if name == "sf_autoets":
        return AutoETS(season_length=season)
    if name == "sf_theta":
        return DynamicOptimizedTheta(season_length=season)
    if name == "sf_seasonal_naive":
        return SeasonalNaive(season_length=season)
    raise ValueError(name)


def statsforecast_function(names: tuple[str, ...]):
    """A ModelFunction: the mean of the named statsforecast models, fitted per product and
    origin on the history since the product's first sale."""

    def predict(panel: Panel, freq, origins, horizon, random_state, tracker):
        season = SEASON[freq]
        out = np.full((len(panel.skus), len(origins), horizon), np.nan)
        for i in range(len(panel.skus)):
            for j, origin in enumerate(origins):
                y = panel.values[i, panel.starts[i] : origin]
                if len(y) < 4:
                    continue
                means = []
                for name in names:
                    # AutoETS and Theta refuse a season longer than the history allows;
                    # they then fall back to non-seasonal fits, as in R's forecast package.
                    model = _statsforecast_model(name, season if len(y) > 2 * season else 1)
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        try:
                            means.append(model.forecast(y=y, h=horizon)["mean"])
                        except Exception:  # a failed fit leaves NaN
                            means.append(np.full(horizon, np.nan))
                out[i, j] = np.mean(means, axis=0)
        tracker.step()
        return out

    return predict


EXTRA = {
    "sf_autoets": statsforecast_function(("sf_autoets",)),
    "sf_theta": statsforecast_function(("sf_theta",)),
    "sf_ensemble": statsforecast_function(("sf_autoets", "sf_theta")),
    "sf_seasonal_naive": statsforecast_function(("sf_seasonal_naive",)),
}


def data_sets() -> dict[str, tuple[pd.DataFrame, str, int]]:
    real = pd.read_csv(ROOT / "tests/ml/fixtures/real_monthly.csv", parse_dates=["date"])
    return {
        "real_monthly": (real, "M", 12),
        "seasonal_weekly": (synthetic.seasonal_weekly(), "W", 8),
        "weekly_cycle_daily": (synthetic.weekly_cycle_daily(), "D", 7),
        "noise_daily": (synthetic.noise_daily(), "D", 7),
        "known_noise_monthly": (synthetic.seasonal_monthly_known_noise(), "M", 6),
    }


CONFIGS = {
    "exp_smoothing": ("exp_smoothing",),
    "theta": ("theta",),
    "ensemble": ("ensemble",),
    "gradient_boosting": ("gradient_boosting",),
    "sf_autoets": ("sf_autoets",),
    "sf_theta": ("sf_theta",),
    "sf_ensemble": ("sf_ensemble",),
    "sf_seasonal_naive": ("sf_seasonal_naive",),
    "selection_ours": CANDIDATES,
    "selection_no_gbm": tuple(c for c in CANDIDATES if c != "gradient_boosting"),
    "selection_sf": ("seasonal_naive", "sf_autoets", "sf_theta", "sf_ensemble"),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", nargs="*")
    parser.add_argument("--configs", nargs="*")
    args = parser.parse_args()
    results = []
    for set_name, (frame, freq, horizon) in data_sets().items():
        if args.only and set_name not in args.only:
            continue
        for config, candidates in CONFIGS.items():
            if args.configs and config not in args.configs:
                continue
            started = time.perf_counter()
            rows = evaluate_series(frame, freq, horizon, candidates=candidates, extra_models=EXTRA)
            seconds = time.perf_counter() - started
            summary = summarize(rows)
            line = {
                "set": set_name,
                "config": config,
                "geometric_mean_ratio": summary["geometric_mean_ratio"],
                "ratio_p10": summary["ratio_p10"],
                "ratio_p90": summary["ratio_p90"],
                "worse_share": summary["worse_share"],
                "coverage": summary["coverage"],
                "seconds": round(seconds, 2),
                "per_series": {r["sku"]: r["ratio"] for r in rows},
            }
            results.append(line)
            print(json.dumps(line), flush=True)
    print(
        f"{'set':<22}{'config':<20}{'gmean':>8}{'p10':>7}{'p90':>7}{'worse':>7}{'cover':>7}{'s':>8}"
    )
    for r in results:
        print(
            f"{r['set']:<22}{r['config']:<20}{r['geometric_mean_ratio']:>8.3f}"
            f"{r['ratio_p10']:>7.3f}{r['ratio_p90']:>7.3f}{r['worse_share']:>7.2f}"
            f"{r['coverage']:>7.3f}{r['seconds']:>8.1f}"
        )


if __name__ == "__main__":
    main()
