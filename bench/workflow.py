"""The order workflow end to end against a real web server and cluster, next to the same work
done inline in one process.

    python bench/workflow.py [--n 200] [--database-url postgres://postgres@127.0.0.1:5432/aktina_bench_wf]
                             [--workers 2] [--rounds 2] [--threads 4] [--noop-n 1000] [--coalesce 1]

The work compared: N orders placed and every run they cause that is due within the analytics
coalescing window (`--coalesce` seconds, set as ANALYTICS_COALESCE_SECONDS for both sides):
approval, fulfilment, the completion notification and its e-mail, the coalesced analytics run.
Delayed runs (the shipping label and approval reminders, a day away here) are left out on
both sides. Both sides use the in-memory mail backend.

Inline (`inline_orders_per_s`): the orders placed with the service in this process, one at a
time, each order's runs performed through the worker's own code path (`perform`) before the
next is placed. The clock runs only around `order_create` and `perform`; choosing the next run
and making a coalesced run due (the broker's part) are outside it. SQL statements per order
(`statements_per_order`, the cache table left out as tests/orders/test_statement_budget.py
counts them) come from a second, untimed pass over `--statements-n` more orders.

Queued (`orders_per_s`): the N orders posted to `POST /api/orders/` by `--threads` client
threads against gunicorn (`--web-workers`) while one cluster (`--workers`) works; the clock runs
from the first request to the `finished_at` of the last run of that same set (every run the
round's orders caused, the delayed ones excepted). `ratio_to_inline` = orders_per_s /
inline_orders_per_s; `inline_runs_per_order` and `queued_runs_per_order` say whether both sides
did the same work (they differ only where a status change escaped the coalescing window).

Each round also measures `noop_jobs_per_s`: `async_task("bench.tasks.noop")` x `--noop-n` on the
same running cluster. The ledger is django-q2's broker, so these are ledger runs (DjangoQTask),
not raw django-q2 (bench/jobs.py measures raw django-q2 on its stock broker):
`noop_ceiling_orders_per_s` = noop rate / queued runs per order, `ratio_to_noop_ceiling` =
orders_per_s / that. After the rounds, orders are posted at a steady half of the measured
throughput (paced, not a burst) and their create -> `fulfilling` latency is reported.
`--inline-only` stops after the inline side. Medians over rounds. Last line is JSON.

`--profile` starts no server: it counts SQL statements and inline time per job class, then
cProfiles `aktina.jobs.testing.work_off` over n orders placed with the service.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    Cluster,
    bench_customers,
    emit,
    median,
    percentile,
    setup_django,
    wait_for,
)
from bench.load import ApiClient, WebServer

PASSWORD = "bench-password-1"
LABEL_DELAY = 86400

JSON_KEYS = (
    "inline_orders_per_s",
    "inline_runs_per_order",
    "statements_per_order",
    "orders_per_s",
    "orders_per_s_min",
    "orders_per_s_max",
    "queued_runs_per_order",
    "ratio_to_inline",
    "latency_p50_ms",
    "latency_p95_ms",
    "half_load_latency_p50_ms",
    "half_load_latency_p95_ms",
    "noop_jobs_per_s",
    "noop_ceiling_orders_per_s",
    "ratio_to_noop_ceiling",
)
JSON_KEYS_INLINE_ONLY = ("inline_orders_per_s", "inline_runs_per_order", "statements_per_order")


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


def noop_rate(n: int) -> float:
    """No-op runs per second on the running cluster, enqueued through django-q2's `async_task`:
    with the ledger as django-q2's broker these are ledger runs (DjangoQTask)."""
    from django.db import transaction
    from django_q.tasks import async_task

    from aktina.jobs.models import JobRun
    from aktina.jobs.rawtasks import DjangoQTask

    with transaction.atomic():
        for i in range(n):
            async_task("bench.tasks.noop", i)
    # Only these: the label runs of earlier orders stay queued for LABEL_DELAY.
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


def _not_delayed(runs):
    """The runs compared on both sides: all but the delayed ones (label, reminder)."""
    return [
        r for r in runs if (r["available_at"] - r["created_at"]).total_seconds() < LABEL_DELAY / 2
    ]


def workflow_round(clients: list[ApiClient], n: int, seed: int) -> dict:
    from django.db.models import Q
    from django.utils import timezone

    from aktina.jobs.models import JobRun
    from aktina.jobs.rawtasks import DjangoQTask
    from orders.models import Order

    started_wall = timezone.now()
    started = time.perf_counter()
    ids = post_orders(clients, n, seed)
    posted_s = time.perf_counter() - started
    fulfilling = Order.objects.filter(pk__in=ids, status=Order.Status.FULFILLING)
    wait_for(lambda: fulfilling.count() == n, timeout=900, interval=0.1)
    # Then every run these orders caused that is due (or will be, inside the coalescing
    # window): the same set the inline side performs.
    window = JobRun.objects.filter(created_at__gte=started_wall).exclude(
        job_name=DjangoQTask.job_name
    )
    soon = Q(available_at__lte=timezone.now() + dt.timedelta(seconds=LABEL_DELAY / 2))

    def pending() -> bool:
        return window.filter(soon, status__in=JobRun.ACTIVE).exists()

    wait_for(lambda: not pending(), timeout=900, interval=0.1)
    rows = list(fulfilling.values_list("created_at", "fulfillment_started_at"))
    latencies = [(f - c).total_seconds() * 1000 for c, f in rows]
    done = _not_delayed(window.values("job_name", "created_at", "available_at", "finished_at"))
    finished_wall = max(r["finished_at"] for r in done)
    elapsed = (finished_wall - started_wall).total_seconds()
    per_job: dict[str, int] = {}
    for r in done:
        name = r["job_name"].rsplit(".", 1)[-1]
        per_job[name] = per_job.get(name, 0) + 1
    return {
        "orders_per_s": n / elapsed,
        "elapsed_s": elapsed,
        "post_s": posted_s,
        "latencies": latencies,
        "runs_per_order": len(done) / n,
        "per_job": per_job,
    }


def _next_due_run(horizon_s: float):
    from django.utils import timezone

    from aktina.jobs.models import JobRun

    horizon = timezone.now() + dt.timedelta(seconds=horizon_s)
    return (
        JobRun.objects.filter(status=JobRun.Status.QUEUED, available_at__lte=horizon)
        .order_by("available_at", "id")
        .first()
    )


def inline_cost(n: int, statements_n: int, seed: int = 7) -> dict:
    """N orders placed with the service and their runs performed here, one process, no broker
    and no HTTP: orders/s and runs per order; then statements per order in an untimed pass."""
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

    def make_due(run) -> None:
        # Its time has come, as the broker would deliver it: the coalescing delay passed. A
        # second back: the claim compares with the database's clock.
        JobRun.objects.filter(pk=run.pk, available_at__gt=timezone.now()).update(
            available_at=timezone.now() - dt.timedelta(seconds=1)
        )

    # One order at a time, each run to the end of its due runs before the next is placed: the
    # serial cost of an order, its burst coalesced as on an idle cluster.
    timed = 0.0
    executed = 0
    ids = []
    for k in range(n):
        started = time.perf_counter()
        order = order_create(customer=customers[k % len(customers)], items=small_items(rng))
        timed += time.perf_counter() - started
        ids.append(order.pk)
        while (run := _next_due_run(horizon)) is not None:
            make_due(run)
            started = time.perf_counter()
            outcome = perform(run.pk, run.timeout)
            timed += time.perf_counter() - started
            if outcome == "skipped":
                raise RuntimeError(f"inline: run {run.pk} was not claimed")
            executed += 1
    fulfilling = Order.objects.filter(pk__in=ids, status=Order.Status.FULFILLING).count()
    if fulfilling != n:
        raise RuntimeError(f"inline: {fulfilling} of {n} orders reached fulfilling")

    def counted(ctx) -> int:
        # The cache is the database here and Redis in production: left out, as in the test.
        return sum(1 for q in ctx.captured_queries if "aktina_cache" not in q["sql"])

    statements = 0
    for k in range(statements_n):
        connection.queries_log.clear()
        with CaptureQueriesContext(connection) as ctx:
            order_create(customer=customers[k % len(customers)], items=small_items(rng))
        statements += counted(ctx)
        while (run := _next_due_run(horizon)) is not None:
            make_due(run)
            connection.queries_log.clear()
            with CaptureQueriesContext(connection) as ctx:
                perform(run.pk, run.timeout)
            statements += counted(ctx)
    return {
        "orders_per_s": n / timed,
        "runs_per_order": executed / n,
        "statements_per_order": statements / statements_n if statements_n else None,
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
        f"inline under cProfile (profiler overhead included: not a throughput figure): {done} "
        f"deliveries in {elapsed:.2f} s, {elapsed / n * 1000:.1f} ms per order"
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
            f"ms p50 with query capture={median([t for _, t in values]):.1f}"
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
    parser.add_argument("--noop-n", type=int, default=1000)
    parser.add_argument("--coalesce", type=float, default=1.0, help="ANALYTICS_COALESCE_SECONDS")
    parser.add_argument("--statements-n", type=int, default=20, help="orders, untimed pass")
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
        ORDER_REMINDER_DELAY_SECONDS=str(LABEL_DELAY),
        ANALYTICS_COALESCE_SECONDS=str(args.coalesce),
        EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
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
    inline = inline_cost(args.n, args.statements_n)
    print(
        f"inline: {inline['orders_per_s']:.1f} orders/s, "
        f"{inline['runs_per_order']:.2f} runs/order, "
        f"{inline['statements_per_order']:.1f} statements/order",
        flush=True,
    )
    inline_figures = {
        "inline_orders_per_s": round(inline["orders_per_s"], 1),
        "inline_runs_per_order": round(inline["runs_per_order"], 2),
        "statements_per_order": round(inline["statements_per_order"], 1),
    }
    if args.inline_only:
        emit(inline_figures, JSON_KEYS_INLINE_ONLY)
        return
    connection.close()

    server = WebServer(env, workers=args.web_workers)
    cluster = Cluster(env)
    rounds = []
    noop_rates = []
    try:
        clients = [ApiClient(server.url, name, PASSWORD) for name in customers]
        time.sleep(4)  # let the cluster spawn its workers before the clock starts
        # Warm up: the first requests and jobs import code in the web and worker processes.
        workflow_round(clients, 10, seed=999)
        for r in range(args.rounds):
            noop_rates.append(noop_rate(args.noop_n))
            rounds.append(workflow_round(clients, args.n, seed=r))
            print(
                f"round {r + 1}: no-op {noop_rates[-1]:.0f} runs/s; workflow "
                f"{rounds[-1]['orders_per_s']:.1f} orders/s ({rounds[-1]['elapsed_s']:.1f} s, "
                f"posting took {rounds[-1]['post_s']:.1f} s), "
                f"{rounds[-1]['runs_per_order']:.2f} runs/order {rounds[-1]['per_job']}",
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
    rates = [r["orders_per_s"] for r in rounds]
    orders_per_s = median(rates)
    runs_per_order = median([r["runs_per_order"] for r in rounds])
    noop = median(noop_rates)
    ceiling = noop / runs_per_order
    latencies = [ms for r in rounds for ms in r["latencies"]]
    print(
        f"database: {connection.vendor}, n={args.n}, workers={args.workers}, "
        f"web workers={args.web_workers}, client threads={args.threads}, rounds={args.rounds}, "
        f"coalescing window {args.coalesce} s"
    )
    print(
        f"queued {orders_per_s:.1f} orders/s [{min(rates):.1f}-{max(rates):.1f}] ÷ inline "
        f"{inline['orders_per_s']:.1f} = {orders_per_s / inline['orders_per_s']:.2f}; runs per "
        f"order queued {runs_per_order:.2f}, inline {inline['runs_per_order']:.2f}"
    )
    emit(
        {
            **inline_figures,
            "orders_per_s": round(orders_per_s, 1),
            "orders_per_s_min": round(min(rates), 1),
            "orders_per_s_max": round(max(rates), 1),
            "queued_runs_per_order": round(runs_per_order, 2),
            "ratio_to_inline": round(orders_per_s / inline["orders_per_s"], 3),
            "latency_p50_ms": percentile(latencies, 50),
            "latency_p95_ms": percentile(latencies, 95),
            "half_load_latency_p50_ms": percentile(half, 50),
            "half_load_latency_p95_ms": percentile(half, 95),
            "noop_jobs_per_s": round(noop, 1),
            "noop_ceiling_orders_per_s": round(ceiling, 1),
            "ratio_to_noop_ceiling": round(orders_per_s / ceiling, 3),
        },
        JSON_KEYS,
    )


if __name__ == "__main__":
    main()
