"""Analytics: cost of one incremental metrics update with small and large history, measured
interleaved, and the dashboard rebuild time.

    python bench/analytics.py [--updates 200] [--rounds 10] [--small 1000] [--large 100000]
                              [--database-url postgres://postgres@127.0.0.1:5432/aktina_bench]

Two child processes each hold a database of their own (PostgreSQL: `<name>_small` and
`<name>_large`; SQLite: two temporary files): one seeded with `--small` historical orders
(demo_seed_history), the other with `--large`, metrics rebuilt in both. Then `--rounds` rounds,
each timing `--updates / --rounds` incremental updates in one and then the other (the order
alternates per round), so both sizes meet the same machine minutes apart at most seconds. An
update moves an order between completed and cancelled, the most expensive kind: every aggregate
row changes and the customer's first/last order is re-read. Last line is JSON (keys in
JSON_KEYS): update_ms_small, update_ms_large (medians of every sample), ratio (large/small;
target <= 1.5), dashboard_rebuild_ms and rebuild_s_large (the large database).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import emit, setup_django

JSON_KEYS = (
    "update_ms_small",
    "update_ms_large",
    "ratio",
    "dashboard_rebuild_ms",
    "rebuild_s_large",
)
MARK = "@@bench "  # the lines of the parent-child protocol on the child's stdout


def time_updates(n: int, *, seed: int) -> list[float]:
    """Milliseconds of one `metrics_apply_order`, for each of `n` status changes."""
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
    return samples


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


def serve(size: int, database_url: str | None) -> None:
    """Child: seed `size` orders into its own database, then answer the parent's commands."""
    setup_django(database_url, f"analytics-{size}")

    from analytics.services import metrics_rebuild
    from orders.demo import demo_seed_base, demo_seed_history

    demo_seed_base(password="bench-password-1")
    demo_seed_history(orders=size, seed=size)
    start = time.perf_counter()
    counts = metrics_rebuild()
    reply({"orders": counts["orders"], "rebuild_s": time.perf_counter() - start})
    for line in sys.stdin:
        command, *rest = line.split()
        if command == "updates":
            reply({"samples": time_updates(int(rest[0]), seed=int(rest[1]))})
        elif command == "dashboard":
            reply({"ms": time_dashboard()})
        else:
            return


def reply(data: dict) -> None:
    sys.stdout.write(MARK + json.dumps(data) + "\n")
    sys.stdout.flush()


class Child:
    def __init__(self, size: int, database_url: str | None):
        args = [sys.executable, __file__, "--serve", str(size)]
        if database_url:
            args += ["--database-url", database_url]
        self.size = size
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def ask(self, command: str | None = None) -> dict:
        if command:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
        for line in self.proc.stdout:
            if line.startswith(MARK):
                return json.loads(line[len(MARK) :])
        raise RuntimeError(f"the {self.size}-order child exited ({self.proc.wait()})")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--updates", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve, args.database_url)
        return

    def url(suffix: str) -> str | None:
        return f"{args.database_url}_{suffix}" if args.database_url else None

    small, large = Child(args.small, url("small")), Child(args.large, url("large"))
    try:
        ready = {child.size: child.ask() for child in (small, large)}
        print(
            f"seeded {ready[args.small]['orders']} and {ready[args.large]['orders']} orders; "
            f"rebuild of the large history {ready[args.large]['rebuild_s']:.1f} s"
        )
        per_round = max(1, args.updates // args.rounds)
        samples: dict[int, list[float]] = {args.small: [], args.large: []}
        for r in range(args.rounds):
            for child in (small, large) if r % 2 == 0 else (large, small):
                samples[child.size] += child.ask(f"updates {per_round} {r}")["samples"]
        dashboard = large.ask("dashboard")["ms"]
    finally:
        small.stop()
        large.stop()
    small_ms = statistics.median(samples[args.small])
    large_ms = statistics.median(samples[args.large])
    for size, values in samples.items():
        print(
            f"history {size:>7} orders: {statistics.median(values):.2f} ms per update (median of "
            f"{len(values)}, interleaved; min {min(values):.2f}, max {max(values):.2f})"
        )
    print(f"dashboard rebuild after invalidation ({args.large} orders): {dashboard:.1f} ms")
    emit(
        {
            "update_ms_small": round(small_ms, 3),
            "update_ms_large": round(large_ms, 3),
            "ratio": round(large_ms / small_ms, 3),
            "dashboard_rebuild_ms": round(dashboard, 1),
            "rebuild_s_large": round(ready[args.large]["rebuild_s"], 1),
        },
        JSON_KEYS,
    )


if __name__ == "__main__":
    main()
