"""What one /metrics scrape costs with a big ledger: at 10 000 runs vs at `--runs`.

    python bench/metrics.py [--runs 1000000] [--small 10000] [--repeats 7]
                            [--database-url postgres://postgres@127.0.0.1:5432/aktina_bench_metrics]

Fills the ledger with bench/queues.py's week of traffic (the same mix and bulk SQL), then times
GET /metrics with the bearer token through `django.test.Client`: median and spread of
`--repeats` after one warm-up, and the SQL statements per scrape (equal at both sizes).
Last line is JSON.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import emit, median, setup_django

JSON_KEYS = ("database", "runs", "ratio", "small", "large")

TOKEN = "bench-metrics-token-0123456789"


def measure(client, repeats: int) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def scrape():
        response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
        assert response.status_code == 200, response.status_code
        return response

    scrape()  # warm-up
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        scrape()
        samples.append((time.perf_counter() - start) * 1000)
    with CaptureQueriesContext(connection) as captured:
        body = scrape().content
    slowest = max(captured.captured_queries, key=lambda q: float(q["time"]))
    return {
        "median_ms": round(median(samples), 1),
        "min_ms": round(min(samples), 1),
        "max_ms": round(max(samples), 1),
        "queries": len(captured),
        "slowest_query_ms": round(float(slowest["time"]) * 1000, 1),
        "bytes": len(body),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    setup_django(
        args.database_url, "metrics", METRICS_TOKEN=TOKEN, DJANGO_ALLOWED_HOSTS="testserver"
    )

    from django.db import connection
    from django.test import Client

    from bench.queues import fill, ledger_summary

    client = Client()
    results = {}
    for label, size in (("small", args.small), ("large", args.runs)):
        seconds = fill(size)
        summary = ledger_summary()
        print(f"{label}: {size} runs filled in {seconds:.1f} s ({summary})")
        results[label] = measure(client, args.repeats)
        print(f"  /metrics: {results[label]}")
    ratio = results["large"]["median_ms"] / results["small"]["median_ms"]
    print(
        f"\n{connection.vendor}: /metrics median {results['small']['median_ms']} ms at "
        f"{args.small} runs, {results['large']['median_ms']} ms at {args.runs} (x{ratio:.2f})"
    )
    emit(
        {"database": connection.vendor, "runs": args.runs, "ratio": round(ratio, 2), **results},
        JSON_KEYS,
    )


if __name__ == "__main__":
    main()
