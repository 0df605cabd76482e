"""Benchmark the pure ML core on synthetic order lines (no Django, no database).

Usage, from the project root: ``python bench/ml.py [--customers N --lines N --products N]``.
Prints a readable summary, then as its last line a JSON object (keys in JSON_KEYS) with
``rows``, ``segmentation_s``, ``forecast_s``, ``peak_rss_mb`` and the held-out figures of the
forecasts. Cold start: numpy and pandas are loaded by the data generator before any clock;
everything else each step needs is imported inside its clock (scikit-learn, SciPy and
threadpoolctl in segmentation's, the forecasting package and its compilation in the
forecasts'), and the first call of every model is timed too. ``import_s`` says how much of
segmentation's time was the imports.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

# Run as a plain script from anywhere: make `ml` and `bench` importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import emit
from bench.ml_core import synthetic_order_lines

JSON_KEYS = (
    "rows",
    "segmentation_s",
    "segmentation_import_s",
    "forecast_s",
    "segmentation_cpu_s",
    "forecast_cpu_s",
    "peak_rss_mb",
    "holdout_geometric_mean_ratio",
    "holdout_worse_share",
    "holdout_coverage",
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--products", type=int, default=500)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--freq", choices=("D", "W", "M"), default="W")
    parser.add_argument("--horizon", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def peak_rss_mb() -> float:
    # Linux reports ru_maxrss in kilobytes.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    started = time.perf_counter()
    lines = synthetic_order_lines(
        n_customers=args.customers,
        n_lines=args.lines,
        n_products=args.products,
        days=args.days,
        seed=args.seed,
    )
    generate_s = time.perf_counter() - started
    print(f"generated {len(lines):,} lines in {generate_s:.1f} s")

    if any(name.startswith(("sklearn", "scipy", "ml.")) for name in sys.modules):
        raise RuntimeError("not a cold start: scikit-learn, SciPy or ml is imported already")
    started, cpu = time.perf_counter(), time.process_time()
    # Imported here so that the imports are timed too.
    from ml.features import demand_series, rfm_table
    from ml.segmentation import segment_customers

    import_s = time.perf_counter() - started
    segmentation = segment_customers(rfm_table(lines))
    segmentation_s = time.perf_counter() - started
    segmentation_cpu_s = time.process_time() - cpu
    print(
        f"segmentation: {len(segmentation.labels):,} customers, k={segmentation.k}, "
        f"silhouette={segmentation.silhouette:.3f} in {segmentation_s:.1f} s "
        f"({import_s:.1f} s of it imports)"
    )
    print(segmentation.profiles.round(2).to_string(index=False))

    started, cpu = time.perf_counter(), time.process_time()
    # Imported here so that the import (and any compilation it triggers) is timed too.
    from ml.forecasting import forecast_products, summarize

    forecasts = forecast_products(demand_series(lines, args.freq), args.freq, args.horizon)
    forecast_s = time.perf_counter() - started
    forecast_cpu_s = time.process_time() - cpu
    models = {}
    for forecast in forecasts:
        models[forecast.model] = models.get(forecast.model, 0) + 1
    held_out = summarize(
        [
            {"ratio": f.holdout_ratio, "coverage": f.holdout_coverage}
            for f in forecasts
            if f.holdout_mae is not None
        ]
    )
    print(
        f"forecasts: {len(forecasts)} products, freq={args.freq}, horizon={args.horizon} "
        f"in {forecast_s:.1f} s; models {models}; held out (windows the choice never saw): "
        f"{held_out['beaten']}/{held_out['scored']} beat seasonal naive, "
        f"{held_out['worse']} worse, geometric mean ratio "
        f"{held_out['geometric_mean_ratio'] or float('nan'):.3f}, 80 % interval coverage "
        f"{held_out['coverage'] or float('nan'):.1%}"
    )
    result = {
        "rows": len(lines),
        "segmentation_s": round(segmentation_s, 2),
        "segmentation_import_s": round(import_s, 2),
        "forecast_s": round(forecast_s, 2),
        # CPU seconds of this process: what the figure would be alone on the machine (the
        # work is single-threaded), whatever else shares the two cores.
        "segmentation_cpu_s": round(segmentation_cpu_s, 2),
        "forecast_cpu_s": round(forecast_cpu_s, 2),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "holdout_geometric_mean_ratio": held_out["geometric_mean_ratio"],
        "holdout_worse_share": held_out["worse_share"],
        "holdout_coverage": held_out["coverage"],
    }
    print(f"peak RSS {result['peak_rss_mb']} MB")
    emit(result, JSON_KEYS)
    return result


if __name__ == "__main__":
    main()
