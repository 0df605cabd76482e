"""The workflow against real `manage.py qcluster` processes and the file test database."""

from decimal import Decimal

import pytest
from django.db.models import Sum
from django.utils import timezone

from aktina.core import roles
from aktina.jobs.models import JobRun
from orders.models import Allocation, Order, Stock
from tests.factories import ProductFactory, StockFactory, UserFactory, WarehouseFactory
from tests.live import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(400)]
S = Order.Status
FAST = {
    "JOBS_SWEEP_SECONDS": "1",
    "JOBS_LEASE_GRACE_SECONDS": "4",  # qcluster requires more than the 3.5 s kill margin
    "ORDER_LABEL_DELAY_SECONDS": "1",
    "ORDER_CARRIER_RATE_LIMIT": "1000",
}
SETTLED = {S.PENDING, S.APPROVED, S.FULFILLING}


def settled() -> bool:
    """No order mid-workflow and no due run left (the 24 h reminders are not due)."""
    due = JobRun.objects.filter(status__in=JobRun.ACTIVE, available_at__lte=timezone.now())
    return not Order.objects.filter(status__in=SETTLED).exists() and not due.exists()


def assert_stock_invariants() -> None:
    for stock in Stock.objects.all():
        allocated = Allocation.objects.filter(stock=stock).aggregate(s=Sum("quantity"))["s"] or 0
        assert stock.quantity_allocated == allocated, stock
        assert 0 <= stock.quantity_allocated <= stock.quantity, stock


def test_sixty_orders_through_the_api_reach_their_states(live_cluster, api):
    customer = UserFactory(username="live-customer", role=roles.CUSTOMER)
    w1 = WarehouseFactory(code="W1", capacity=10_000)
    w2 = WarehouseFactory(code="W2", capacity=10_000)
    small = ProductFactory(sku="SMALL", unit_price=Decimal("5.00"))
    large = ProductFactory(sku="LARGE", unit_price=Decimal("2000.00"))
    scarce = ProductFactory(sku="SCARCE", unit_price=Decimal("1.00"))
    StockFactory(product=small, warehouse=w1, quantity=100)
    StockFactory(product=small, warehouse=w2, quantity=100)
    StockFactory(product=large, warehouse=w2, quantity=100)
    StockFactory(product=scarce, warehouse=w1, quantity=10)
    live_cluster(**FAST)
    api.force_authenticate(customer)

    def post(sku, quantity):
        response = api.post(
            "/api/orders/", {"items": [{"sku": sku, "quantity": quantity}]}, format="json"
        )
        assert response.status_code == 201, response.content
        return response.json()["id"]

    small_ids = [post("SMALL", 1 + i % 3) for i in range(30)]  # 60 units
    large_ids = [post("LARGE", 10) for _ in range(10)]  # 20 000 each: needs a manager
    scarce_ids = [post("SCARCE", 1) for _ in range(20)]  # 10 units for 20 orders

    wait_until(settled, timeout=240, interval=0.5, message="every order to settle")

    def statuses(ids):
        return list(Order.objects.filter(pk__in=ids).values_list("status", flat=True))

    assert set(statuses(small_ids)) == {S.SHIPPED}
    assert set(statuses(large_ids)) == {S.AWAITING_APPROVAL}
    scarce_statuses = statuses(scarce_ids)
    assert scarce_statuses.count(S.SHIPPED) == 10
    assert scarce_statuses.count(S.INVENTORY_SHORTAGE) == 10
    assert_stock_invariants()
    assert Stock.objects.get(product=scarce).quantity == 0
    total_small = Stock.objects.filter(product=small).aggregate(s=Sum("quantity"))["s"]
    assert total_small == 200 - 60
    # Every due run ended; only the managers' 24 h reminders wait.
    due = JobRun.objects.filter(status__in=JobRun.ACTIVE, available_at__lte=timezone.now())
    assert not due.exists()
    waiting = set(
        JobRun.objects.filter(status__in=JobRun.ACTIVE).values_list("job_name", flat=True)
    )
    # (and analytics runs still inside their ANALYTICS_COALESCE_SECONDS window, not yet due)
    assert waiting <= {
        "orders.jobs.ProcessOrderReminderJob",
        "analytics.jobs.GenerateOrderAnalyticsJob",
    }
    # The 10 shortages are the orders' state (customers and inventory told), not failed runs:
    # the failed count means "someone must act on a job".
    assert not JobRun.objects.filter(status=JobRun.Status.FAILED).exists()


def test_urgent_order_overtakes_a_backlog_on_its_own_cluster(live_cluster, api, settings):
    settings.JOBS_DEDICATED_QUEUES = ["urgent"]
    customer = UserFactory(username="live-customer", role=roles.CUSTOMER)
    staff = UserFactory(username="live-staff", role=roles.MANAGER)
    product = ProductFactory(sku="P", unit_price=Decimal("1.00"))
    StockFactory(product=product, warehouse=WarehouseFactory(capacity=100_000), quantity=10_000)
    env = {**FAST, "JOBS_DEDICATED_QUEUES": "urgent", "Q_WORKERS": "1"}
    api.force_authenticate(customer)
    backlog = [
        api.post("/api/orders/", {"items": [{"sku": "P", "quantity": 1}]}, format="json").json()[
            "id"
        ]
        for _ in range(150)
    ]
    api.force_authenticate(staff)
    urgent = api.post(
        "/api/orders/",
        {"items": [{"sku": "P", "quantity": 1}], "priority": "urgent"},
        format="json",
    ).json()["id"]
    live_cluster(**env)
    # `qcluster --name` alone does not switch clusters on Linux (django-q2 reads the name at
    # import, before the option is parsed): the environment variable does.
    urgent_cluster = live_cluster(name="urgent", **env)

    def urgent_fulfilling():
        return Order.objects.get(pk=urgent).status in {S.FULFILLING, S.SHIPPED}

    try:
        wait_until(urgent_fulfilling, timeout=60, message="the urgent order to be fulfilled")
    except AssertionError as exc:
        runs = list(JobRun.objects.filter(queue="urgent").values("job_name", "status"))
        raise AssertionError(f"{exc}\nurgent runs: {runs}\n{urgent_cluster.log()[-2000:]}") from exc
    still_waiting = Order.objects.filter(pk__in=backlog, status=S.PENDING).count()
    assert still_waiting > 50, f"the backlog drained first ({still_waiting} left)"
