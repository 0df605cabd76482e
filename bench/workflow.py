"""The order workflow end to end against a real web server and cluster, next to raw django-q2.

    python bench/workflow.py [--n 200] [--database-url postgres://postgres@127.0.0.1:5432/aktina_bench_wf]
                             [--workers 2] [--rounds 2] [--threads 4] [--raw-n 1000]

Each round: (1) the raw django-q2 no-op rate on the same running cluster and database
(`async_task("bench.tasks.noop")` x raw-n, as bench/jobs.py measures it); (2) N orders posted to
`POST /api/orders/` by a few client threads while the cluster works them off; the clock runs
from the first request to the last order's `fulfillment_started_at`. The shipping label is
delayed by a day (excluded). The server is gunicorn with 2 workers on the same 2 cores.

jobs_per_order counts every run the workflow dispatched due for execution while the round ran
(approval, fulfilment, the chain's completion notification, analytics), not the delayed label:
that is the work the cluster had to do. ceiling = raw rate / jobs_per_order; ratio =
orders_per_s / ceiling. Medians over rounds. Last line is JSON.

Before the servers start, the inline cost: N orders placed with the service in this process,
one at a time, each order's runs performed through the worker's own code path (`perform`)
before the next is placed, in the order a cluster takes them (by `available_at`; a run
waiting only for the analytics coalescing delay is made due, the label is not):
`inline_orders_per_s` and `statements_per_order` (the cache table left out, as
tests/orders/test_statement_budget.py counts them). `ratio_to_inline` = queued orders/s /
inline orders/s: what the queue and the second core buy. After the rounds, orders are posted
at a steady half of the measured throughput (paced, not a burst) and their create ->
`fulfilling` latency is reported. `--inline-only` stops after the inline cost.

`--profile` starts no server: it counts SQL statements and inline time per job class, then
cProfiles `aktina.jobs.testing.work_off` over n orders placed with the service.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Cluster, bench_customers, median, percentile, setup_django, wait_for
from bench.load import ApiClient, WebServer

PASSWORD = "bench-password-1"
LABEL_DELAY = 86400


def seed_ample_stock(customers: int = 8) -> list[str]:
    """Demo data with enough stock and staging space for any number of bench orders, and
    `customers` customer accounts (one customer for every order would make their metrics row
    a hot spot no real shop has). Returns the customers' usernames."""

    from orders.demo import demo_seed_base
    from orders.models import Stock, Warehouse

    demo_seed_base(password=PASSWORD)
    Stock.objects.update(quantity=10_000_000, quantity_allocated=0)
    Warehouse.objects.update(capacity=1_000_000_000)
    return bench_customers(customers, prefix="bench", password=PASSWORD)


def raw_rate(n: int) -> float:
    from django.db import transaction
    from django_q.tasks import async_task

    from aktina.jobs.models import JobRun
    from aktina.jobs.rawtasks import DjangoQTask

    # The ledger is django-q2's broker: raw tasks are ledger runs (DjangoQTask) too.
    with transaction.atomic():
        for i in range(n):
            async_task("bench.tasks.noop", i)
    # Only the raw tasks: the label runs of earlier orders stay queued for LABEL_DELAY.
    active = JobRun.objects.filter(status__in=JobRun.ACTIVE, job_name=DjangoQTask.job_name)
    return n / wait_for(lambda: not active.exists(), timeout=600)


def small_items(rng: random.Random) -> list[dict]:
    skus = rng.sample(range(1, 41), rng.choice([1, 1, 2]))
    return [{"sku": f"SKU-{s:04d}", "quantity": rng.randint(1, 3)} for s in skus]


def post_orders(clients: list[ApiClient], n: int, seed: int) -> list[int]:
    """Post n small orders from one thread per client; returns the order ids."""
    ids: list[int] = []
    lock = threading.Lock()

    def work(k: int) -> None:
        rng = random.Random(seed * 1000 + k)
        client = clients[k]
        for _ in range(k, n, len(clients)):
            response = client.order_create(small_items(rng))
            if response.status_code != 201:
                raise RuntimeError(f"order create: {response.status_code} {response.text[:300]}")
            with lock:
                ids.append(response.json()["id"])

    with ThreadPoolExecutor(len(clients)) as pool:
        for future in [pool.submit(work, k) for k in range(len(clients))]:
            future.result()
    return ids


def workflow_round(clients: list[ApiClient], n: int, seed: int) -> dict:
    from django.utils import timezone

    from aktina.jobs.models import JobRun
    from orders.models import Order

    started_wall = timezone.now()
    started = time.perf_counter()
    ids = post_orders(clients, n, seed)
    posted_s = time.perf_counter() - started
    fulfilling = Order.objects.filter(pk__in=ids, status=Order.Status.FULFILLING)
    wait_for(lambda: fulfilling.count() == n, timeout=900, interval=0.1)
    rows = list(fulfilling.values_list("created_at", "fulfillment_started_at"))
    finished_wall = max(f for _, f in rows)
    elapsed = (finished_wall - started_wall).total_seconds()
    latencies = [(f - c).total_seconds() * 1000 for c, f in rows]

    window = JobRun.objects.filter(created_at__gte=started_wall, created_at__lte=finished_wall)
    due = [
        r
        for r in window.values("job_name", "created_at", "available_at", "started_at")
        if (r["available_at"] - r["created_at"]).total_seconds() < LABEL_DELAY / 2
    ]
    executed = sum(1 for r in due if r["started_at"] and r["started_at"] <= finished_wall)
    per_job: dict[str, int] = {}
    for r in due:
        name = r["job_name"].rsplit(".", 1)[-1]
        per_job[name] = per_job.get(name, 0) + 1
    # Let the tail (notifications, analytics) finish so the next round starts from idle.
    wait_for(
        lambda: (
            not JobRun.objects.filter(
                status__in=JobRun.ACTIVE, available_at__lte=timezone.now()
            ).exists()
        ),
        timeout=600,
        interval=0.2,
    )
    return {
        "orders_per_s": n / elapsed,
        "elapsed_s": elapsed,
        "post_s": posted_s,
        "latencies": latencies,
        "jobs_per_order": len(due) / n,
        "executed_per_order": executed / n,
        "path_jobs_per_order": (
            per_job.get("ProcessOrderApprovalJob", 0) + per_job.get("ProcessOrderFulfillmentJob", 0)
        )
        / n,
        "per_job": per_job,
    }


def _next_due_run(horizon_s: float):
    import datetime as dt

    from django.utils import timezone

    from aktina.jobs.models import JobRun

    horizon = timezone.now() + dt.timedelta(seconds=horizon_s)
    return (
        JobRun.objects.filter(status=JobRun.Status.QUEUED, available_at__lte=horizon)
        .order_by("available_at", "id")
        .first()
    )


def inline_cost(n: int, seed: int = 7) -> dict:
    """N orders placed with the service and their runs performed here, one process, no broker
    and no HTTP: orders/s, statements and executed runs per order."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from aktina.jobs.models import JobRun
    from aktina.jobs.worker import perform
    from orders.models import Order
    from orders.services import order_create

    customers = list(get_user_model().objects.filter(username__startswith="bench-customer-"))
    rng = random.Random(seed)
    horizon = settings.ANALYTICS_COALESCE_SECONDS + 1
    executed = statements = 0
    ids = []

    def counted(ctx) -> int:
        # The cache is the database here and Redis in production: left out, as in the test.
        return sum(1 for q in ctx.captured_queries if "aktina_cache" not in q["sql"])

    # One order at a time, each run to `fulfilling` before the next is placed: the serial cost
    # of an order, with its burst coalesced as on an idle cluster. (A batch placed at once
    # outruns the coalescing window in a single process: every early order's analytics run
    # comes due before its fulfilment, which a queued cluster pays only when its wait is as
    # long.) Choosing the next run and shifting its time is the broker's part, not counted.
    started = time.perf_counter()
    for k in range(n):
        # Django keeps the last 9 000 statements; a full log would make the capture empty.
        connection.queries_log.clear()
        with CaptureQueriesContext(connection) as ctx:
            order = order_create(customer=customers[k % len(customers)], items=small_items(rng))
        statements += counted(ctx)
        ids.append(order.pk)
        while (run := _next_due_run(horizon)) is not None:
            # Its time has come, as the broker would deliver it: the coalescing delay passed.
            JobRun.objects.filter(pk=run.pk, available_at__gt=timezone.now()).update(
                available_at=timezone.now()
            )
            connection.queries_log.clear()
            with CaptureQueriesContext(connection) as ctx:
                perform(run.pk, run.timeout)
            statements += counted(ctx)
            executed += 1
    elapsed = time.perf_counter() - started
    fulfilling = Order.objects.filter(pk__in=ids, status=Order.Status.FULFILLING).count()
    if fulfilling != n:
        raise RuntimeError(f"inline: {fulfilling} of {n} orders reached fulfilling")
    return {
        "orders_per_s": n / elapsed,
        "statements_per_order": statements / n,
        "executed_per_order": executed / n,
    }


def half_load_latencies(clients: list[ApiClient], rate: float, n: int, seed: int) -> list[float]:
    """Post n orders at a steady `rate` orders/s (each client thread keeps its own schedule),
    wait for them to reach fulfilling; create -> fulfilling latencies in ms."""
    from orders.models import Order

    ids: list[int] = []
    lock = threading.Lock()
    started = time.perf_counter() + 0.2
    interval = len(clients) / rate

    def work(k: int) -> None:
        rng = random.Random(seed * 1000 + k)
        for i, _ in enumerate(range(k, n, len(clients))):
            # Open-loop pacing: the next request goes at its time, however long the last took.
            due = started + k / rate + i * interval
            time.sleep(max(0.0, due - time.perf_counter()))
            response = clients[k].order_create(small_items(rng))
            if response.status_code != 201:
                raise RuntimeError(f"order create: {response.status_code} {response.text[:300]}")
            with lock:
                ids.append(response.json()["id"])

    with ThreadPoolExecutor(len(clients)) as pool:
        for future in [pool.submit(work, k) for k in range(len(clients))]:
            future.result()
    fulfilling = Order.objects.filter(pk__in=ids, status=Order.Status.FULFILLING)
    wait_for(lambda: fulfilling.count() == n, timeout=900, interval=0.1)
    return [
        (f - c).total_seconds() * 1000
        for c, f in fulfilling.values_list("created_at", "fulfillment_started_at")
    ]


def run_timings() -> dict[str, tuple[float, float, int]]:
    """Per job class: median run time and median wait (ms) from the ledger, and the count."""
    from aktina.jobs.models import JobRun

    out: dict[str, list] = {}
    for r in JobRun.objects.filter(started_at__isnull=False, finished_at__isnull=False):
        out.setdefault(r.job_name.rsplit(".", 1)[-1], []).append(
            (r.run_seconds * 1000, r.wait_seconds * 1000)
        )
    return {
        k: (median([a for a, _ in v]), median([b for _, b in v]), len(v)) for k, v in out.items()
    }


def profile_inline(n: int) -> None:
    """cProfile of the worker's code path run inline (`work_off`): n orders placed with the
    service, then every due run performed in this process. Prints the top functions."""
    import cProfile
    import io
    import pstats

    from django.contrib.auth import get_user_model
    from django.db import connection

    from aktina.jobs.testing import work_off
    from orders.services import order_create

    customer = get_user_model().objects.get(username="customer")
    rng = random.Random(1)
    for _ in range(n):
        order_create(customer=customer, items=small_items(rng))
    connection.queries_log.clear()
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    done = work_off()
    profiler.disable()
    elapsed = time.perf_counter() - started
    print(
        f"inline: {done} deliveries in {elapsed:.2f} s = {done / elapsed:.0f} runs/s, "
        f"{elapsed / n * 1000:.1f} ms per order"
    )
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).sort_stats("cumulative")
    stats.print_stats(45)
    print(out.getvalue())
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
    print(out.getvalue())


def count_queries(n: int) -> None:
    """SQL statements per job class, run inline (DEBUG cursor), for n orders."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from aktina.jobs.models import JobRun
    from aktina.jobs.worker import perform
    from orders.services import order_create

    customer = get_user_model().objects.get(username="customer")
    rng = random.Random(2)
    with CaptureQueriesContext(connection) as ctx:
        order_create(customer=customer, items=small_items(rng))
    print(f"  order_create (service only): {len(ctx.captured_queries)} statements")
    for _ in range(n - 1):
        order_create(customer=customer, items=small_items(rng))
    counts: dict[str, list[tuple[int, float]]] = {}
    samples: dict[str, list[str]] = {}
    while True:
        from django.utils import timezone

        run = (
            JobRun.objects.filter(status="queued", available_at__lte=timezone.now())
            .order_by("available_at", "id")
            .first()
        )
        if run is None:
            break
        started = time.perf_counter()
        with CaptureQueriesContext(connection) as ctx:
            perform(run.pk, run.timeout)
        took = (time.perf_counter() - started) * 1000
        name = run.job_name.rsplit(".", 1)[-1]
        if name not in counts:
            samples[name] = [q["sql"] for q in ctx.captured_queries]
        counts.setdefault(name, []).append((len(ctx.captured_queries), took))
    for name, values in sorted(counts.items()):
        print(
            f"  {name:40s} runs={len(values):4d} statements p50={median([q for q, _ in values])} "
            f"inline ms p50={median([t for _, t in values]):.1f}"
        )
    from django_q.tasks import async_task

    started = time.perf_counter()
    for i in range(200):
        async_task("bench.tasks.noop", i, sync=True)
    print(
        f"  raw no-op async_task(sync=True): {(time.perf_counter() - started) / 200 * 1000:.2f} ms"
    )
    if "--verbose-sql" in sys.argv:
        for name, sqls in samples.items():
            print(f"  --- {name}")
            for sql in sqls:
                print("     ", sql[:160])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--raw-n", type=int, default=1000)
    parser.add_argument("--half-load-n", type=int, default=200, help="orders at half load")
    parser.add_argument(
        "--profile", action="store_true", help="no servers: cProfile the jobs inline and exit"
    )
    parser.add_argument("--verbose-sql", action="store_true")
    parser.add_argument("--inline-only", action="store_true", help="no servers: inline cost")
    args = parser.parse_args()
    env = setup_django(
        args.database_url,
        "workflow",
        JOBS_IMPORT="bench.tasks",
        Q_WORKERS=str(args.workers),
        ORDER_LABEL_DELAY_SECONDS=str(LABEL_DELAY),
        THROTTLE_ORDER_CREATE="1000000/min",
        THROTTLE_AUTH="100000/min",
    )
    from django.conf import settings
    from django.db import connection

    customers = seed_ample_stock(args.threads)
    if args.profile:
        settings.EMAIL_BACKEND = "django.core.mail.backends.dummy.EmailBackend"
        count_queries(20)
        profile_inline(args.n)
        return
    # The e-mail the inline runs send: counted in their statements, not printed here.
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    inline = inline_cost(args.n)
    print(
        f"inline: {inline['orders_per_s']:.1f} orders/s, "
        f"{inline['statements_per_order']:.1f} statements/order, "
        f"{inline['executed_per_order']:.2f} runs executed/order",
        flush=True,
    )
    if args.inline_only:
        print(json.dumps({k: round(v, 2) for k, v in inline.items()}))
        return
    connection.close()

    server = WebServer(env, workers=args.web_workers)
    cluster = Cluster(env)
    rounds = []
    raw_rates = []
    try:
        clients = [ApiClient(server.url, name, PASSWORD) for name in customers]
        time.sleep(4)  # let the cluster spawn its workers before the clock starts
        # Warm up: the first requests and jobs import code in the web and worker processes.
        workflow_round(clients, 10, seed=999)
        for r in range(args.rounds):
            raw_rates.append(raw_rate(args.raw_n))
            rounds.append(workflow_round(clients, args.n, seed=r))
            print(
                f"round {r + 1}: raw {raw_rates[-1]:.0f} tasks/s; workflow "
                f"{rounds[-1]['orders_per_s']:.1f} orders/s ({rounds[-1]['elapsed_s']:.1f} s, "
                f"posting took {rounds[-1]['post_s']:.1f} s), "
                f"{rounds[-1]['jobs_per_order']:.2f} jobs/order {rounds[-1]['per_job']}",
                flush=True,
            )
        half_rate = median([r["orders_per_s"] for r in rounds]) / 2
        half = half_load_latencies(clients, half_rate, args.half_load_n, seed=77)
        print(
            f"half load: {half_rate:.1f} orders/s offered, create -> fulfilling p50 "
            f"{percentile(half, 50):.0f} ms, p95 {percentile(half, 95):.0f} ms",
            flush=True,
        )
    finally:
        cluster.stop()
        server.stop()

    for name, (run_ms, wait_ms, count) in sorted(run_timings().items()):
        print(f"  {name:40s} n={count:5d} run p50 {run_ms:7.1f} ms  wait p50 {wait_ms:8.1f} ms")
    orders_per_s = median([r["orders_per_s"] for r in rounds])
    jobs_per_order = median([r["jobs_per_order"] for r in rounds])
    raw = median(raw_rates)
    ceiling = raw / jobs_per_order
    latencies = [ms for r in rounds for ms in r["latencies"]]
    path = median([r["path_jobs_per_order"] for r in rounds])
    rates = [r["orders_per_s"] for r in rounds]
    print(
        f"database: {connection.vendor}, n={args.n}, workers={args.workers}, "
        f"web workers={args.web_workers}, client threads={args.threads}, rounds={args.rounds}"
    )
    print(
        f"raw django-q2 no-op: {', '.join(f'{r:.0f}' for r in raw_rates)} tasks/s; "
        f"workflow: {', '.join(f'{rate:.1f}' for rate in rates)} orders/s; "
        f"runs executed by the end: {median([r['executed_per_order'] for r in rounds]):.2f}/order; "
        f"path-only (approval+fulfilment) ratio {orders_per_s / (raw / path):.3f}"
    )
    print(
        json.dumps(
            {
                "inline_orders_per_s": round(inline["orders_per_s"], 1),
                "ratio_to_inline": round(orders_per_s / inline["orders_per_s"], 3),
                "statements_per_order": round(inline["statements_per_order"], 1),
                "executed_jobs_per_order": round(
                    median([r["executed_per_order"] for r in rounds]), 2
                ),
                "half_load_latency_p50_ms": round(percentile(half, 50), 1),
                "half_load_latency_p95_ms": round(percentile(half, 95), 1),
                "orders_per_s": round(orders_per_s, 1),
                "latency_p50_ms": round(percentile(latencies, 50), 1),
                "latency_p95_ms": round(percentile(latencies, 95), 1),
                "jobs_per_order": round(jobs_per_order, 2),
                "ceiling_orders_per_s": round(ceiling, 1),
                "ratio": round(orders_per_s / ceiling, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
