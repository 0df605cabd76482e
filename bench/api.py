"""API load: gunicorn (4 workers) on PostgreSQL, a threaded client creating orders and reading
lists, next to a minimal DRF endpoint doing one insert, in the same run.

    python bench/api.py [--seconds 60] [--database-url postgres://postgres@127.0.0.1:5432/aktina_bench_api]
                        [--threads 8] [--web-workers 4] [--rounds 2] [--cluster]

One gunicorn serves both (settings `bench.ceiling_settings`: the app's settings and URLs plus
`POST /bench/ceiling/`). Phases alternate (app, create, ceiling) `--rounds` times, `--seconds`
in all per kind. `create`: every request `POST /api/orders/`; `ratio` = its requests/s / the
ceiling's, and p99 its latency. The app mix: every other request `POST /api/orders/` (a small
order: the order, its lines, the status change, the approval run and its broker message), the
others `GET /api/orders/` (first page, the customer's own orders). Throttles are raised for the run;
the cache (throttle counters) is Redis as in production unless `--redis-url ''`.
No cluster runs unless `--cluster` (the request path alone is measured; the dispatched jobs wait
in the ledger). Throughput counts successful responses only; error responses are counted apart
(`errors`, `create_errors`, `ceiling_errors`). Last line is JSON (keys in JSON_KEYS);
`mix_ratio` = mix requests/s / ceiling requests/s.

`--profile N` starts no server: N order creations through DRF's test client in this process,
under cProfile, with the SQL statements each costs; prints where the time goes.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Cluster, emit, median, percentile, setup_django
from bench.load import ApiClient, WebServer, hammer
from bench.workflow import PASSWORD, seed_ample_stock, small_items

JSON_KEYS = (
    "requests_per_s",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "errors",
    "ceiling_requests_per_s",
    "ceiling_errors",
    "mix_ratio",
    "create_requests_per_s",
    "create_p50_ms",
    "create_p99_ms",
    "create_errors",
    "ratio",
)


def app_request(client: ApiClient, i: int):
    if i % 2 == 0:
        rng = random.Random(i)
        return client.order_create(small_items(rng))
    return client.get("/api/orders/")


def create_request(client: ApiClient, i: int):
    return client.order_create(small_items(random.Random(i)))


def ceiling_request(client: ApiClient, i: int):
    return client.post("/bench/ceiling/")


def profile_create(n: int, username: str) -> None:
    """Where one order creation's time goes, in process (no HTTP server, no network)."""
    import cProfile
    import io
    import pstats

    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(get_user_model().objects.get(username=username))
    rng = random.Random(3)

    def create() -> None:
        response = client.post("/api/orders/", {"items": small_items(rng)}, format="json")
        if response.status_code != 201:
            raise RuntimeError(f"order create: {response.status_code} {response.content[:300]}")

    for _ in range(20):
        create()  # warm: imports, content types, compiled regexes
    with CaptureQueriesContext(connection) as ctx:
        create()
    print(f"one order creation: {len(ctx.captured_queries)} SQL statements")
    for q in ctx.captured_queries:
        print(f"  {q['time']:>6s} s  {q['sql'][:110]}")
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    for _ in range(n):
        create()
    profiler.disable()
    elapsed = time.perf_counter() - started
    print(f"{n} creations in process under cProfile: {elapsed / n * 1000:.2f} ms each")
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(40)
    print(out.getvalue())
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(20)
    print(out.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/aktina_bench_api"
    )
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--web-workers", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--cluster", action="store_true", help="also run one qcluster")
    parser.add_argument(
        "--redis-url",
        default="redis://127.0.0.1:6379/14",
        help="cache (throttle counters) as in production; '' for the database cache",
    )
    parser.add_argument("--profile", type=int, default=0, metavar="N")
    args = parser.parse_args()
    cache_env = (
        {"REDIS_URL": args.redis_url, "CACHE_KEY_PREFIX": f"api-bench-{time.time_ns()}"}
        if args.redis_url
        else {}
    )
    env = setup_django(
        args.database_url,
        "api",
        **cache_env,
        THROTTLE_ORDER_CREATE="10000000/min",
        THROTTLE_AUTH="100000/min",
        ORDER_LABEL_DELAY_SECONDS="86400",
    )
    from django.db import connection

    customers = seed_ample_stock(args.threads)
    if args.profile:
        profile_create(args.profile, customers[0])
        return
    connection.close()
    env["DJANGO_SETTINGS_MODULE"] = "bench.ceiling_settings"
    server = WebServer(env, workers=args.web_workers)
    cluster = Cluster(env) if args.cluster else None
    phase = args.seconds / args.rounds
    kinds = {"app": app_request, "create": create_request, "ceiling": ceiling_request}
    results = {kind: [] for kind in kinds}
    try:
        clients = [ApiClient(server.url, name, PASSWORD) for name in customers]
        hammer(clients, app_request, seconds=3)  # warm up both paths in every worker
        hammer(clients, ceiling_request, seconds=2)
        for r in range(args.rounds):
            for kind, request in kinds.items():
                tally, elapsed = hammer(clients, request, seconds=phase)
                results[kind].append((tally, elapsed))
                print(
                    f"round {r + 1} {kind:8s}: {len(tally.latencies_ms) / elapsed:7.1f} ok req/s, "
                    f"p50 {percentile(tally.latencies_ms, 50):.1f} ms, errors {tally.errors} "
                    f"{tally.error_samples[:2]}",
                    flush=True,
                )
    finally:
        if cluster:
            cluster.stop()
        server.stop()

    def rate(kind: str) -> float:
        return median([len(t.latencies_ms) / e for t, e in results[kind]])

    app_latencies = [ms for t, _ in results["app"] for ms in t.latencies_ms]
    ceiling_latencies = [ms for t, _ in results["ceiling"] for ms in t.latencies_ms]
    create_latencies = [ms for t, _ in results["create"] for ms in t.latencies_ms]
    app_rate, create_rate, ceiling_rate = rate("app"), rate("create"), rate("ceiling")
    print(
        f"database: {connection.vendor}; gunicorn workers {args.web_workers}; client threads "
        f"{args.threads}; {args.rounds} rounds of {phase:.0f} s per kind; cluster: "
        f"{'one' if args.cluster else 'none'}; cache: {'redis' if args.redis_url else 'database'}"
    )
    print(
        f"ceiling (one-insert DRF endpoint): {ceiling_rate:.1f} req/s, p50 "
        f"{percentile(ceiling_latencies, 50):.1f} ms, "
        f"p95 {percentile(ceiling_latencies, 95):.1f} ms"
    )

    def errors(kind: str) -> int:
        return sum(t.errors for t, _ in results[kind])

    emit(
        {
            "requests_per_s": round(app_rate, 1),
            "p50_ms": percentile(app_latencies, 50),
            "p95_ms": percentile(app_latencies, 95),
            "p99_ms": percentile(app_latencies, 99),
            "errors": errors("app"),
            "ceiling_requests_per_s": round(ceiling_rate, 1),
            "ceiling_errors": errors("ceiling"),
            "mix_ratio": round(app_rate / ceiling_rate, 3),
            "create_requests_per_s": round(create_rate, 1),
            "create_p50_ms": percentile(create_latencies, 50),
            "create_p99_ms": percentile(create_latencies, 99),
            "create_errors": errors("create"),
            "ratio": round(create_rate / ceiling_rate, 3),
        },
        JSON_KEYS,
    )


if __name__ == "__main__":
    main()
