"""Analytics: cost of one incremental metrics update with small and large history, and the
dashboard rebuild time.

    python bench/analytics.py [--updates 200] [--small 1000] [--large 100000]
                              [--database-url postgres://postgres@127.0.0.1:5432/aktina_bench]

Seeds `--small` historical orders (demo_seed_history), rebuilds the metrics, times
`--updates` incremental updates (each one moves an order between completed and cancelled,
the most expensive kind: every aggregate row changes and the customer's first/last order is
re-read); then grows the history to `--large` orders and does the same. Last line is JSON:
update_ms_small, update_ms_large, ratio (large/small; target <= 1.5), dashboard_rebuild_ms.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import setup_django


def time_updates(n: int, *, seed: int) -> float:
    """Median milliseconds of one `metrics_apply_order` over `n` status changes."""
    import random

    from analytics.services import metrics_apply_order
    from orders.models import Order

    rng = random.Random(seed)
    ids = list(Order.objects.values_list("pk", flat=True))
    picked = [rng.choice(ids) for _ in range(n)]
    for order_id in picked[:10]:  # warm-up: connections, caches, statement plans
        metrics_apply_order(order_id=order_id)
    samples = []
    for i, order_id in enumerate(picked):
        status = Order.Status.CANCELLED if i % 2 == 0 else Order.Status.COMPLETED
        Order.objects.filter(pk=order_id).update(status=status)
        start = time.perf_counter()
        metrics_apply_order(order_id=order_id)
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def time_dashboard(repeats: int = 5) -> float:
    from django.core.cache import cache

    from analytics.selectors import dashboard_analytics
    from analytics.services import DASHBOARD_CACHE_KEY

    samples = []
    for _ in range(repeats):
        cache.delete(DASHBOARD_CACHE_KEY)
        start = time.perf_counter()
        dashboard_analytics()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--updates", type=int, default=200)
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    setup_django(args.database_url, "analytics")

    from analytics.services import metrics_rebuild
    from orders.demo import demo_seed_base, demo_seed_history
    from orders.models import Order

    demo_seed_base(password="bench-password-1")
    demo_seed_history(orders=args.small, seed=1)
    metrics_rebuild()
    small = time_updates(args.updates, seed=1)
    print(f"history {Order.objects.count():>7} orders: {small:.2f} ms per update (median)")

    start = time.perf_counter()
    demo_seed_history(orders=args.large - args.small, seed=2)
    seeded = time.perf_counter() - start
    start = time.perf_counter()
    counts = metrics_rebuild()
    rebuilt = time.perf_counter() - start
    print(f"seeded to {counts['orders']} orders in {seeded:.1f} s; rebuild {rebuilt:.1f} s")
    large = time_updates(args.updates, seed=2)
    print(f"history {Order.objects.count():>7} orders: {large:.2f} ms per update (median)")
    dashboard = time_dashboard()
    print(f"dashboard rebuild after invalidation: {dashboard:.1f} ms (median of 5)")
    print(
        json.dumps(
            {
                "update_ms_small": round(small, 3),
                "update_ms_large": round(large, 3),
                "ratio": round(large / small, 3),
                "dashboard_rebuild_ms": round(dashboard, 1),
                "rebuild_s_large": round(rebuilt, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
