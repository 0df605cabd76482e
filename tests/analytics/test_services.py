import datetime as dt
import random
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from analytics.models import (
    CustomerMetric,
    DailyMetric,
    DailyStatusMetric,
    OrderContribution,
    ProductMetric,
)
from analytics.selectors import DASHBOARD_CACHE_KEY
from analytics.services import metrics_apply_order, metrics_rebuild
from orders.models import Order
from tests.factories import OrderFactory, OrderItemFactory, ProductFactory, UserFactory

pytestmark = pytest.mark.django_db
Status = Order.Status


def snapshot() -> dict:
    """Every metric row as plain tuples, so two states compare exactly."""
    return {
        "contributions": sorted(
            OrderContribution.objects.values_list(
                "order_id", "customer_id", "day", "placed_at", "status", "booked", "revenue",
                "lead_time_seconds", "lines",
            )
        ),
        "days": sorted(
            DailyMetric.objects.values_list(
                "day", "orders", "orders_booked", "revenue", "lead_time_orders",
                "lead_time_total_seconds",
            )
        ),
        "statuses": sorted(DailyStatusMetric.objects.values_list("day", "status", "orders")),
        "customers": sorted(
            CustomerMetric.objects.values_list(
                "customer_id", "orders", "revenue", "first_order_at", "last_order_at"
            )
        ),
        "products": sorted(
            ProductMetric.objects.values_list("product_id", "units", "revenue", "orders")
        ),
    }  # fmt: skip


def make_order(*, customer, products, created_at, lines):
    order = OrderFactory(customer=customer, created_at=created_at)
    total = Decimal("0")
    for product, quantity in lines:
        item = OrderItemFactory(order=order, product=product, quantity=quantity)
        total += item.line_total
    Order.objects.filter(pk=order.pk).update(total_amount=total)
    return order


def set_status(order_id: int, status: str, now: dt.datetime) -> None:
    fields = {"status": status}
    if status in (Status.SHIPPED, Status.COMPLETED):
        fields["shipped_at"] = now
    if status == Status.COMPLETED:
        fields["completed_at"] = now + dt.timedelta(hours=3)
    if status == Status.CANCELLED:
        fields["cancelled_at"] = now
    Order.objects.filter(pk=order_id).update(**fields)


def crash_after_update(order_id: int) -> None:
    with transaction.atomic():
        metrics_apply_order(order_id=order_id)
        raise RuntimeError("worker died before commit")


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_incremental_and_rebuild_agree_after_random_walk(seed):
    rng = random.Random(seed)
    base = timezone.now().replace(microsecond=0) - dt.timedelta(days=12)
    customers = [UserFactory() for _ in range(4)]
    products = [ProductFactory(unit_price=Decimal(rng.randint(100, 50000)) / 100) for _ in range(5)]
    orders: list[int] = []
    for _ in range(80):
        op = rng.choices(["create", "status", "cancel", "rerun", "crash", "delete"],
                         weights=[5, 6, 2, 2, 1, 1])[0]  # fmt: skip
        if op == "create" or not orders:
            lines = [(p, rng.randint(1, 5)) for p in rng.sample(products, rng.randint(1, 3))]
            if rng.random() < 0.2:
                lines.append((lines[0][0], 1))  # the same product on two lines
            order = make_order(
                customer=rng.choice(customers),
                products=products,
                created_at=base + dt.timedelta(hours=rng.randint(0, 24 * 10)),
                lines=lines,
            )
            orders.append(order.pk)
            target = order.pk
        elif op == "status":
            target = rng.choice(orders)
            set_status(target, rng.choice(Status.values), base + dt.timedelta(days=11))
        elif op == "cancel":
            target = rng.choice(orders)
            set_status(target, Status.CANCELLED, base + dt.timedelta(days=11))
        elif op == "rerun":
            target = rng.choice(orders)
        elif op == "crash":
            # The update ran but its transaction died (worker killed before commit).
            target = rng.choice(orders)
            set_status(target, rng.choice(Status.values), base + dt.timedelta(days=11))
            with pytest.raises(RuntimeError):
                crash_after_update(target)
        else:
            target = orders.pop(rng.randrange(len(orders)))
            Order.objects.filter(pk=target).delete()  # the post_delete receiver applies it
            continue
        metrics_apply_order(order_id=target)
        if rng.random() < 0.3:
            assert metrics_apply_order(order_id=target) is False  # a re-run changes nothing

    incremental = snapshot()
    assert incremental["days"], "the walk produced no metrics at all"
    metrics_rebuild()
    assert snapshot() == incremental


def test_status_change_moves_contribution_and_cancel_removes_revenue():
    customer = UserFactory()
    product = ProductFactory(unit_price=Decimal("12.50"))
    created = timezone.now() - dt.timedelta(days=2)
    order = make_order(customer=customer, products=[product], created_at=created,
                       lines=[(product, 4)])  # fmt: skip
    metrics_apply_order(order_id=order.pk)
    day = timezone.localdate(created)
    assert DailyMetric.objects.get(day=day).revenue == Decimal("50.00")
    assert DailyStatusMetric.objects.get(day=day, status=Status.PENDING).orders == 1
    assert CustomerMetric.objects.get(customer=customer).first_order_at == order.created_at

    set_status(order.pk, Status.SHIPPED, created + dt.timedelta(hours=30))
    metrics_apply_order(order_id=order.pk)
    metric = DailyMetric.objects.get(day=day)
    assert (metric.lead_time_orders, metric.lead_time_total_seconds) == (1, 30 * 3600)
    assert list(DailyStatusMetric.objects.filter(day=day).values_list("status", "orders")) == [
        (Status.SHIPPED, 1)
    ]

    set_status(order.pk, Status.CANCELLED, created + dt.timedelta(hours=31))
    metrics_apply_order(order_id=order.pk)
    metric = DailyMetric.objects.get(day=day)
    assert (metric.orders, metric.orders_booked, metric.revenue) == (1, 0, Decimal("0"))
    assert not CustomerMetric.objects.exists()
    assert not ProductMetric.objects.exists()


def test_first_and_last_order_survive_removing_the_latest_order():
    customer = UserFactory()
    product = ProductFactory()
    now = timezone.now().replace(microsecond=0)
    early = make_order(customer=customer, products=[product], created_at=now - dt.timedelta(days=5),
                       lines=[(product, 1)])  # fmt: skip
    late = make_order(customer=customer, products=[product], created_at=now,
                      lines=[(product, 1)])  # fmt: skip
    metrics_apply_order(order_id=early.pk)
    metrics_apply_order(order_id=late.pk)
    set_status(late.pk, Status.CANCELLED, now)
    metrics_apply_order(order_id=late.pk)
    metric = CustomerMetric.objects.get(customer=customer)
    assert (metric.orders, metric.first_order_at, metric.last_order_at) == (
        1, early.created_at, early.created_at,
    )  # fmt: skip


def test_update_invalidates_cached_dashboard(django_capture_on_commit_callbacks):
    order = make_order(customer=UserFactory(), products=[], created_at=timezone.now(),
                       lines=[(ProductFactory(), 1)])  # fmt: skip
    cache.set(DASHBOARD_CACHE_KEY, {"stale": True})
    with django_capture_on_commit_callbacks(execute=True):
        metrics_apply_order(order_id=order.pk)
    assert cache.get(DASHBOARD_CACHE_KEY) is None


def _statements_of_apply(order_id: int) -> list[str]:
    with CaptureQueriesContext(connection) as ctx:
        metrics_apply_order(order_id=order_id)
    return [q["sql"] for q in ctx.captured_queries]


def _full_scans(statements: list[str]) -> list[str]:
    """SQLite's plan lines that read a whole table (`SCAN t`, not `SEARCH t USING INDEX`)."""
    scans = []
    with connection.cursor() as cursor:
        for sql in statements:
            if sql.startswith(("SAVEPOINT", "RELEASE", "BEGIN", "COMMIT")):
                continue
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}")
            plan = [row[-1] for row in cursor.fetchall()]
            # `SCAN n CONSTANT ROWS` reads a VALUES list, not a table.
            scans += [p for p in plan if p.startswith("SCAN ") and "CONSTANT ROW" not in p]
    return scans


def test_update_cost_does_not_depend_on_history():
    product, customer, now = ProductFactory(), UserFactory(), timezone.now()

    def history(days: int):
        for i in range(days):
            metrics_apply_order(order_id=make_order(
                customer=customer, products=[product], created_at=now - dt.timedelta(days=i + 1),
                lines=[(product, 1)]).pk)  # fmt: skip

    def new_order():
        return make_order(customer=customer, products=[product], created_at=now,
                          lines=[(product, 2)])  # fmt: skip

    history(1)
    short = _statements_of_apply(new_order().pk)
    history(60)
    order = new_order()
    long = _statements_of_apply(order.pk)
    # lock order, contribution, items, save, day/status/customer/product upserts, first/last
    # (plus the savepoint pair): the same statements with 2 orders behind it or 62.
    assert len(short) == len(long) == 11
    if connection.vendor == "sqlite":
        assert _full_scans(long) == []
    # A cancel takes the order out of the customer's and product's figures (rows may go).
    set_status(order.pk, Status.CANCELLED, now)
    cancelled = _statements_of_apply(order.pk)
    assert len(cancelled) == 14
    if connection.vendor == "sqlite":
        assert _full_scans(cancelled) == []
