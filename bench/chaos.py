"""Chaos run: orders through the API while workers are killed and whole clusters restarted.

    python bench/chaos.py [--orders 1000] [--database-url postgres://postgres@127.0.0.1:5432/aktina_chaos]
                          [--redis-url redis://127.0.0.1:6379/14]
                          [--kill-every 3] [--restarts 2] [--drain-timeout 600]

PostgreSQL (recreated, also the job broker) + Redis (cache, rate limits), one gunicorn server,
two qclusters sharing the database as two hosts would. Orders are a mix:

- small (75 %): auto-approved, fulfilled, labelled 2 s later -> `shipped`;
- large (10 %, 15 000 each): `awaiting_approval`; during the run the manager approves 3 of 5
  (-> `shipped`), rejects 1 (-> `rejected`) and the customer cancels 1 (-> `cancelled`);
- scarce (15 %): one unit each of a product with stock for 40 % of them -> exactly that many
  `shipped`, the rest `inventory_shortage`.

Every `--kill-every` seconds a random grandchild of a qcluster (a worker, the pusher or the
monitor) gets SIGKILL; `--restarts` times a whole cluster's process group is SIGKILLed and
started again. Then the run waits for quiescence and checks the invariants (see `check`).

Effects outside the database are counted where a duplicate would escape (bench/recording.py):
a recording carrier counts every call and every shipment it creates (it honours an idempotency
key, and without one ships again on every call), a recording mail backend every e-mail handed
to it; `duplicate_notifications` counts e-mails beyond the first per recipient, notification
kind and order (the Notification rows themselves are deduplicated by a unique constraint, so
counting them could never find one). After quiescence the incremental metrics are compared
with a full rebuild.

Recovery is made fast for the run only: lease grace 4 s, sweeper every 1 s, redelivery after 10 s,
and (through JOBS_IMPORT=bench.chaos, imported by every process) every job class's timeout capped
at CHAOS_JOB_TIMEOUT (20 s) and its backoff set to [1, 2] s: a killed run is retried after its
lease (timeout + grace) expires, which with production timeouts (up to 300 s) only makes the
drain longer. Last line is JSON.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import random
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CHAOS_JOB_TIMEOUT = int(os.environ.get("CHAOS_JOB_TIMEOUT", "20"))
PASSWORD = "chaos-password-1"
SMALL, LARGE, SCARCE = "small", "large", "scarce"
LARGE_SKU, SCARCE_SKU = "SKU-0039", "SKU-0040"
LARGE_ACTIONS = ["approve", "approve", "approve", "reject", "cancel"]


def _tune_jobs_for_chaos() -> None:
    """Imported in every process through JOBS_IMPORT: short leases and backoffs (see above)."""
    from aktina.jobs.job import _registry

    for cls in _registry.values():
        cls.timeout = min(cls.timeout, CHAOS_JOB_TIMEOUT)
        cls.backoff = [1, 2]


if os.environ.get("CHAOS_TUNE_JOBS") == "1":
    _tune_jobs_for_chaos()


from bench.common import (  # noqa: E402
    Cluster,
    bench_customers,
    emit,
    setup_django,
)

# The last line's keys (the details are printed above it, indented).
JSON_KEYS = (
    "orders", "kills", "lost_runs", "duplicate_effects", "invariant_violations",
    "unexpected_failed", "duplicate_shipments", "duplicate_notifications",
    "carrier_calls_per_shipped_order", "emails_per_notification", "metrics_match_rebuild",
    "drain_s", "rerun_after_holder_died",
)  # fmt: skip
from bench.load import ApiClient, WebServer  # noqa: E402

ChaosCluster = Cluster  # grandchildren() and kill_all() come with bench.common.Process


def emails_per_notification_key(emails: list[dict], notifications) -> collections.Counter:
    """E-mails handed to the mail backend, counted per (recipient, notification kind, order).

    A notification reaches a person as an e-mail; the rows are deduplicated by a unique
    constraint, the mails are not. Each recorded e-mail (`{"to": [...], "subject": ...}`) is
    matched to its notification by recipient and subject (`notifications`: (email, subject,
    kind, order id) rows); one that matches none is counted under `unmatched:<subject>`. A
    count above one is a duplicate."""
    kind_of_mail = {
        (email, subject): (kind, order_id) for email, subject, kind, order_id in notifications
    }
    return collections.Counter(
        (to, *kind_of_mail.get((to, m["subject"]), ("unmatched:" + m["subject"], None)))
        for m in emails
        for to in m["to"]
    )


# --- data ---------------------------------------------------------------------------------
def seed(orders: int, customers: int) -> dict:
    from decimal import Decimal

    from orders.demo import demo_seed_base
    from orders.models import Product, Stock, Warehouse

    demo_seed_base(password=PASSWORD)
    Warehouse.objects.update(capacity=1_000_000_000)
    Stock.objects.update(quantity=1_000_000, quantity_allocated=0)
    Product.objects.filter(sku=LARGE_SKU).update(unit_price=Decimal("5000.00"))
    scarce_orders = sum(1 for i in range(orders) if kind_of(i) == SCARCE)
    scarce_units = int(scarce_orders * 0.4)
    first = Warehouse.objects.order_by("pk").first()
    Stock.objects.filter(product__sku=SCARCE_SKU).update(quantity=0)
    Stock.objects.filter(product__sku=SCARCE_SKU, warehouse=first).update(quantity=scarce_units)
    names = bench_customers(customers, prefix="chaos", password=PASSWORD)
    return {"customers": names, "scarce_units": scarce_units, "scarce_orders": scarce_orders}


def kind_of(i: int) -> str:
    slot = i % 20
    return SMALL if slot < 15 else LARGE if slot < 17 else SCARCE


def items_for(kind: str, rng: random.Random) -> list[dict]:
    if kind == LARGE:
        return [{"sku": LARGE_SKU, "quantity": 3}]
    if kind == SCARCE:
        return [{"sku": SCARCE_SKU, "quantity": 1}]
    skus = rng.sample(range(1, 31), rng.choice([1, 1, 2]))
    return [{"sku": f"SKU-{s:04d}", "quantity": rng.randint(1, 3)} for s in skus]


# --- the run ------------------------------------------------------------------------------
def run(
    *,
    orders: int = 1000,
    database_url: str = "postgres://postgres@127.0.0.1:5432/aktina_chaos",
    redis_url: str = "redis://127.0.0.1:6379/14",
    kill_every: float = 3.0,
    restarts: int = 2,
    threads: int = 4,
    drain_timeout: float = 600,
    resend_after: int = 10,
    seed_value: int = 1,
    log=print,
) -> dict:
    """The whole chaos run; returns the result dict (the JSON line's fields plus `details`)."""
    env = setup_django(
        database_url,
        "chaos",
        REDIS_URL=redis_url,
        CACHE_KEY_PREFIX=f"chaos{os.getpid()}-{time.time_ns()}",
        JOBS_IMPORT="bench.chaos",
        CHAOS_TUNE_JOBS="1",
        # The shortest grace qcluster accepts (it must exceed django-q2's 3.5 s kill margin).
        JOBS_LEASE_GRACE_SECONDS="4",
        JOBS_SWEEP_SECONDS="1",
        JOBS_REDELIVER_SECONDS=str(resend_after),
        # A killed cluster's runs are rescued by the others' heartbeat check after 10 s.
        JOBS_HEARTBEAT_SECONDS="1",
        JOBS_PROCESS_STALE_SECONDS="10",
        ORDER_LABEL_DELAY_SECONDS="2",
        ORDER_CARRIER_RATE_LIMIT="10000",
        THROTTLE_ORDER_CREATE="1000000/min",
        THROTTLE_AUTH="100000/min",
        # Real duplicate effects are counted where they would escape: every carrier call (in a
        # file) and every e-mail handed to the mail backend (in Redis), from all processes.
        ORDER_CARRIER_CLIENT="tests.recording.RecordingCarrier",
        RECORDING_CARRIER_PATH=f"{tempfile.mkdtemp(prefix='chaos-carrier-')}/carrier.sqlite3",
        EMAIL_BACKEND="bench.recording.RecordingEmailBackend",
        CHAOS_RECORD_REDIS_URL=redis_url,
        CHAOS_RECORD_PREFIX=f"chaos-record-{os.getpid()}-{time.time_ns()}",
        PYTHONUNBUFFERED="1",
    )
    from django.db import connection

    data = seed(orders, threads)
    connection.close()
    rng = random.Random(seed_value)
    server = WebServer(env, workers=2)
    clusters = [ChaosCluster(env), ChaosCluster(env)]
    kills = 0
    restarted = 0
    hung: list[str] = []
    api_errors: list[str] = []
    placed: dict[int, tuple[str, str | None, int]] = {}  # order id -> (kind, action, client no)
    lock = threading.Lock()
    done = threading.Event()
    large_queue: collections.deque[int] = collections.deque()
    actions = {"done": 0, "errors": []}

    def push(k: int, client: ApiClient) -> None:
        r = random.Random(seed_value * 100 + k)
        large_seen = 0
        for i in range(k, orders, threads):
            kind = kind_of(i)
            response = client.order_create(items_for(kind, r))
            if response.status_code != 201:
                with lock:
                    api_errors.append(f"{response.status_code} {response.text[:200]}")
                continue
            action = None
            if kind == LARGE:
                action = LARGE_ACTIONS[(i // 20 * 2 + i % 20 - 15) % len(LARGE_ACTIONS)]
                large_seen += 1
            with lock:
                placed[response.json()["id"]] = (kind, action, k)
                if kind == LARGE:
                    large_queue.append(response.json()["id"])

    def decide(manager: ApiClient, owners: list[ApiClient]) -> None:
        """The manager (and, for cancels, the customer) act on large orders during the run."""
        from orders.models import Order

        first_seen: dict[int, float] = {}
        while not (done.is_set() and not large_queue):
            try:
                order_id = large_queue.popleft()
            except IndexError:
                time.sleep(0.2)
                continue
            _, action, owner = placed[order_id]
            first_seen.setdefault(order_id, time.monotonic())
            status = Order.objects.filter(pk=order_id).values_list("status", flat=True).first()
            # Decide once the approval job asked (or after 120 s: deciding a pending order is
            # allowed too); until then look at the other large orders.
            waiting = time.monotonic() - first_seen[order_id] < 120
            if status != Order.Status.AWAITING_APPROVAL and waiting:
                large_queue.append(order_id)
                time.sleep(0.05 if len(large_queue) > 1 else 0.3)
                continue
            if action == "approve":
                response = manager.post(f"/api/orders/{order_id}/approve/")
            elif action == "reject":
                response = manager.post(f"/api/orders/{order_id}/reject/", {"reason": "chaos"})
            else:
                response = owners[owner].post(f"/api/orders/{order_id}/cancel/", {"reason": "x"})
            if response.status_code >= 300:
                actions["errors"].append(
                    f"{order_id} {action}: {response.status_code} {response.text[:200]}"
                )
            actions["done"] += 1
        connection.close()

    started = time.monotonic()
    try:
        time.sleep(3)
        clients = [ApiClient(server.url, name, PASSWORD) for name in data["customers"]]
        owners = [ApiClient(server.url, name, PASSWORD) for name in data["customers"]]
        manager = ApiClient(server.url, "manager", PASSWORD)
        pushers = [threading.Thread(target=push, args=(k, c)) for k, c in enumerate(clients)]
        decider = threading.Thread(target=decide, args=(manager, owners))
        for t in [*pushers, decider]:
            t.start()
        # Chaos while orders arrive and the large ones are decided.
        push_started = time.monotonic()
        next_kill = time.monotonic() + kill_every
        restart_marks = [(j + 1) / (restarts + 1) for j in range(restarts)]
        while any(t.is_alive() for t in pushers) or decider.is_alive():
            time.sleep(0.1)
            with lock:
                progress = len(placed) / orders
            if restart_marks and progress >= restart_marks[0]:
                restart_marks.pop(0)
                j = restarted % len(clusters)
                clusters[j].kill_all()
                clusters[j] = ChaosCluster(env)
                restarted += 1
                log(f"  restarted cluster {j} at {len(placed)} orders")
            if time.monotonic() >= next_kill:
                next_kill += kill_every
                victims = [(c, p) for c in clusters for p in c.grandchildren()]
                if victims:
                    _, pid = rng.choice(victims)
                    with contextlib.suppress(ProcessLookupError):  # it exited already
                        os.kill(pid, signal.SIGKILL)
                        kills += 1
            if not any(t.is_alive() for t in pushers):
                done.set()
        push_s = time.monotonic() - push_started
        log(
            f"  pushed {len(placed)} orders in {push_s:.1f} s, {kills} kills, "
            f"{restarted} restarts; draining"
        )
        drain_started = time.monotonic()
        settled = wait_quiet(drain_timeout)
        drain_s = time.monotonic() - drain_started
        if not settled:
            log(f"  not quiet after {drain_timeout:.0f} s")
        # A cluster whose qcluster process lives but whose sentinel has no children left is
        # hung (django-q2's guard loop blocked on a dead worker's timer lock): it serves nothing.
        hung = [
            str(c.log_path) for c in clusters if c.proc.poll() is None and not c.grandchildren()
        ]
        if hung:
            log(f"  hung clusters (alive, no workers): {hung}")
    finally:
        for cluster in clusters:
            cluster.stop()
        server.stop()

    result = check(placed, data)
    result["details"].update(
        {
            "api_errors": api_errors[:10],
            "api_error_count": len(api_errors),
            "decision_errors": actions["errors"][:10],
            "restarts": restarted,
            "run_s": round(time.monotonic() - started, 1),
            "cluster_logs": [str(c.log_path) for c in clusters],
            "hung_clusters": hung,
        }
    )
    result.update(
        {"kills": kills, "drain_s": round(drain_s, 1), "rerun_after_holder_died": _reruns()}
    )
    return result


def _reruns() -> int:
    """Runs handed back because the process holding them died (a worker that died in a job, a
    reset pool, a dead cluster's runs rescued by another): each was run again."""
    from aktina.jobs.counters import counters_read

    names = {"sentinel_runs_handed_back", "sentinel_runs_rescued"}
    return sum(value for name, _, value in counters_read() if name in names)


def _active_due():
    import datetime as dt

    from django.utils import timezone

    from aktina.jobs.models import JobRun

    # Managers' reminders wait a day on purpose; anything else active is work not yet done.
    horizon = timezone.now() + dt.timedelta(minutes=10)
    return JobRun.objects.filter(status__in=JobRun.ACTIVE, available_at__lte=horizon)


def wait_quiet(timeout: float, quiet_for: float = 4.0) -> bool:
    from orders.models import Order

    moving = {Order.Status.PENDING, Order.Status.APPROVED, Order.Status.FULFILLING}
    deadline = time.monotonic() + timeout
    quiet_since = None
    while time.monotonic() < deadline:
        busy = _active_due().exists() or Order.objects.filter(status__in=moving).exists()
        if busy:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= quiet_for:
            return True
        time.sleep(0.5)
    return False


# --- the invariants -----------------------------------------------------------------------
def check(placed: dict[int, tuple[str, str | None, int]], data: dict) -> dict:
    """Every invariant, counted; `details` says which order, run or row broke what."""
    from django.db.models import Count, Sum

    from aktina.jobs.models import JobRun
    from aktina.notifications.models import Notification
    from orders.models import Allocation, Order, OrderItem, OrderStatusChange, Stock

    S = Order.Status  # noqa: N806 - the model's own short name, as in orders.services
    problems: list[str] = []
    duplicates: list[str] = []

    # 1. every order where its kind says it must end
    expected = {
        (SMALL, None): {S.SHIPPED},
        (LARGE, "approve"): {S.SHIPPED},
        (LARGE, "reject"): {S.REJECTED},
        (LARGE, "cancel"): {S.CANCELLED},
        (SCARCE, None): {S.SHIPPED, S.INVENTORY_SHORTAGE},
    }
    status = dict(Order.objects.filter(pk__in=placed).values_list("pk", "status"))
    by_state = collections.Counter()
    for order_id, (kind, action, _) in placed.items():
        by_state[(kind, action, status.get(order_id))] += 1
        if status.get(order_id) not in expected[(kind, action)]:
            problems.append(f"order {order_id} ({kind}/{action}) is {status.get(order_id)}")
    scarce_ids = [o for o, (k, _, _) in placed.items() if k == SCARCE]
    scarce_shipped = sum(1 for o in scarce_ids if status.get(o) == S.SHIPPED)
    if scarce_shipped != min(len(scarce_ids), data["scarce_units"]):
        problems.append(
            f"scarce: {scarce_shipped} shipped, stock allowed {data['scarce_units']} of "
            f"{len(scarce_ids)}"
        )

    # 2. stock rows: within bounds, allocated = sum of allocations
    allocated = dict(
        Allocation.objects.values("stock_id")
        .annotate(s=Sum("quantity"))
        .values_list("stock_id", "s")
    )
    for stock in Stock.objects.all():
        if stock.quantity < 0 or not 0 <= stock.quantity_allocated <= stock.quantity:
            problems.append(
                f"stock {stock.pk}: quantity {stock.quantity}, allocated {stock.quantity_allocated}"
            )
        if stock.quantity_allocated != allocated.get(stock.pk, 0):
            problems.append(
                f"stock {stock.pk}: allocated {stock.quantity_allocated} but "
                f"allocations sum to {allocated.get(stock.pk, 0)}"
            )

    # 3. no order allocated (or shipped) twice: what left each stock row is exactly the units
    # of the shipped orders sent from its warehouse; orders that did not ship hold nothing.
    left = collections.Counter()
    for item in OrderItem.objects.filter(order__status__in=[S.SHIPPED, S.COMPLETED]).values(
        "product_id", "order__warehouse_id", "quantity"
    ):
        left[(item["product_id"], item["order__warehouse_id"])] += item["quantity"]
    first_warehouse = _first_warehouse_id()
    for stock in Stock.objects.select_related("product"):
        if stock.product.sku == SCARCE_SKU:
            start = data["scarce_units"] if stock.warehouse_id == first_warehouse else 0
        else:
            start = 1_000_000
        if start - stock.quantity != left[(stock.product_id, stock.warehouse_id)]:
            duplicates.append(
                f"stock {stock.pk} ({stock.product.sku}@{stock.warehouse_id}): "
                f"{start - stock.quantity} units left, shipped orders account for "
                f"{left[(stock.product_id, stock.warehouse_id)]}"
            )
    stray = (
        Allocation.objects.exclude(order_item__order__status=S.FULFILLING)
        .values_list("order_item__order_id", flat=True)
        .distinct()
    )
    for order_id in stray:
        problems.append(f"order {order_id} holds allocations but is {status.get(order_id)}")
    two_warehouses = (
        Allocation.objects.values("order_item__order_id")
        .annotate(w=Count("stock__warehouse_id", distinct=True))
        .filter(w__gt=1)
    )
    for row in two_warehouses:
        duplicates.append(f"order {row['order_item__order_id']} allocated in {row['w']} warehouses")

    # 4. no transition recorded twice (notifications: under 6, where a duplicate escapes)
    for row in (
        OrderStatusChange.objects.values("order_id", "from_status", "to_status")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    ):
        duplicates.append(
            f"order {row['order_id']}: {row['from_status']} -> "
            f"{row['to_status']} recorded {row['n']} times"
        )
    # 5. every dispatched run ended
    lost = list(_active_due().values("id", "job_name", "status", "attempts", "available_at"))
    failed = collections.Counter(
        JobRun.objects.filter(status=JobRun.Status.FAILED).values_list("job_name", flat=True)
    )
    # A shortage ends its run as succeeded (the order waits for stock), so every failed run is
    # one an operator would have to act on.
    failed_runs = JobRun.objects.filter(status=JobRun.Status.FAILED)
    unexpected_failed = list(failed_runs.values("id", "job_name", "attempts", "last_error")[:20])
    unexpected_failed_count = failed_runs.count()

    # 6. effects outside the database, counted by the recording carrier and mail backend
    from bench.recording import tally

    recorded = tally()
    shipped = [o for o in placed if status.get(o) in (S.SHIPPED, S.COMPLETED)]
    live = {o: n - recorded["voided"].get(o, 0) for o, n in recorded["shipments"].items()}
    extra_shipments = {o: n - 1 for o, n in live.items() if n > 1}
    for order_id, extra in sorted(extra_shipments.items()):
        duplicates.append(f"order {order_id}: the carrier created {extra + 1} shipments")
    for order_id in shipped:
        if recorded["shipments"].get(order_id, 0) == 0:
            problems.append(f"order {order_id} is shipped but the carrier created no shipment")
    emailed = Notification.objects.exclude(recipient__email="").count()
    per_email = collections.Counter((tuple(m["to"]), m["subject"]) for m in recorded["emails"])
    per_notification = emails_per_notification_key(
        recorded["emails"],
        Notification.objects.exclude(recipient__email="").values_list(
            "recipient__email", "subject", "kind", "order_id"
        ),
    )
    notification_duplicates = 0
    for (to, kind, order_id), n in sorted(per_notification.items(), key=str):
        if n > 1:
            notification_duplicates += n - 1
            duplicates.append(f"e-mail {kind} for order {order_id} sent {n} times to {to}")

    # 7. after quiescence the incremental metrics equal a full rebuild
    incremental = _metrics_snapshot()
    from analytics.services import metrics_rebuild

    metrics_rebuild()
    rebuilt = _metrics_snapshot()
    metric_diffs = [
        f"{name}: incremental {incremental[name].get(k)} rebuild {rebuilt[name].get(k)}"
        for name in rebuilt
        for k in incremental[name].keys() | rebuilt[name].keys()
        if incremental[name].get(k) != rebuilt[name].get(k)
    ]

    calls = sum(recorded["carrier_calls"].values())
    return {
        "orders": len(placed),
        "lost_runs": len(lost),
        "duplicate_effects": len(duplicates),
        "invariant_violations": len(problems),
        "unexpected_failed": unexpected_failed_count,
        "duplicate_shipments": sum(extra_shipments.values()),
        "duplicate_notifications": notification_duplicates,
        "carrier_calls_per_shipped_order": round(calls / len(shipped), 3) if shipped else None,
        "emails_per_notification": (
            round(len(recorded["emails"]) / emailed, 3) if emailed else None
        ),
        "metrics_match_rebuild": not metric_diffs,
        "details": {
            "carrier_calls": calls,
            "shipped_orders": len(shipped),
            "orders_called_twice": sorted(o for o, n in recorded["carrier_calls"].items() if n > 1)[
                :30
            ],
            "emails": len(recorded["emails"]),
            "notifications_with_email": emailed,
            "emails_repeated": sum(n - 1 for n in per_email.values() if n > 1),
            "metric_differences": metric_diffs[:30],
            "states": {f"{k}/{a}/{s}": n for (k, a, s), n in sorted(by_state.items(), key=str)},
            "problems": problems[:30],
            "duplicates": duplicates[:30],
            "lost": [{**r, "available_at": str(r["available_at"])} for r in lost[:30]],
            "failed_runs": dict(failed),
            "unexpected_failed_runs": [
                {**r, "last_error": r["last_error"][:300]} for r in unexpected_failed
            ],
            "runs_total": JobRun.objects.count(),
            # With lost runs: seconds since any worker started one (a wedged pair of clusters
            # shows as a large number; see the report on django-q2 queue locks).
            "last_start_age_s": _last_start_age(),
            "expired_attempts": _expired_attempts(),
        },
    }


def _metrics_snapshot() -> dict[str, dict]:
    from analytics.models import CustomerMetric, DailyMetric, DailyStatusMetric, ProductMetric

    def rows(model, key: tuple[str, ...]) -> dict:
        fields = [f.attname for f in model._meta.concrete_fields if f.attname != "id"]
        return {
            tuple(row[k] for k in key): tuple(row[f] for f in fields)
            for row in model.objects.values(*fields)
        }

    return {
        "daily": rows(DailyMetric, ("day",)),
        "daily_status": rows(DailyStatusMetric, ("day", "status")),
        "customer": rows(CustomerMetric, ("customer_id",)),
        "product": rows(ProductMetric, ("product_id",)),
    }


def _last_start_age() -> float | None:
    from django.db.models import Max
    from django.utils import timezone

    from aktina.jobs.models import JobRun

    last = JobRun.objects.aggregate(m=Max("started_at"))["m"]
    return None if last is None else round((timezone.now() - last).total_seconds(), 1)


def _first_warehouse_id() -> int:
    from orders.models import Warehouse

    return Warehouse.objects.order_by("pk").values_list("pk", flat=True).first()


def _expired_attempts() -> int:
    from aktina.jobs.models import JobAttempt

    return JobAttempt.objects.filter(outcome=JobAttempt.Outcome.TIMED_OUT).count()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/aktina_chaos")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--kill-every", type=float, default=3.0)
    parser.add_argument("--restarts", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--drain-timeout", type=float, default=600)
    parser.add_argument(
        "--resend-after", type=int, default=10, help="JOBS_REDELIVER_SECONDS (runs lost in memory)"
    )
    args = parser.parse_args()
    if not args.database_url.startswith("postgres"):
        parser.error("the chaos run needs PostgreSQL (--database-url postgres://...)")
    result = run(
        orders=args.orders,
        database_url=args.database_url,
        redis_url=args.redis_url,
        kill_every=args.kill_every,
        restarts=args.restarts,
        threads=args.threads,
        drain_timeout=args.drain_timeout,
        resend_after=args.resend_after,
    )
    details = result.pop("details")
    print(json.dumps(details, indent=1, default=str))
    emit({k: result[k] for k in JSON_KEYS}, JSON_KEYS)


if __name__ == "__main__":
    main()
