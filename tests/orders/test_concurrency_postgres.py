"""Allocation under real concurrency: PostgreSQL, one connection per thread."""

import threading

import pytest
from django.db import connection, connections

from aktina.core import roles
from orders.models import Allocation, Order, Stock
from orders.services import InsufficientStock, order_fulfil
from tests.factories import (
    OrderFactory,
    OrderItemFactory,
    ProductFactory,
    StockFactory,
    UserFactory,
    WarehouseFactory,
)

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(120)]


@pytest.fixture(autouse=True)
def _postgres_only(transactional_db):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (DATABASE_URL=postgres://...): SQLite serialises writers")


def test_twenty_concurrent_fulfilments_for_ten_units_never_oversell():
    product = ProductFactory()
    stock = StockFactory(product=product, warehouse=WarehouseFactory(), quantity=10)
    customer = UserFactory(role=roles.CUSTOMER)
    orders = []
    for _ in range(20):
        order = OrderFactory(customer=customer, status=Order.Status.APPROVED)
        OrderItemFactory(order=order, product=product, quantity=1)
        orders.append(order)
    barrier = threading.Barrier(20)
    outcomes: list[str] = []
    lock = threading.Lock()

    def fulfil(order):
        try:
            barrier.wait()
            order_fulfil(order=order)
            result = "ok"
        except InsufficientStock:
            result = "short"
        except Exception as exc:
            result = f"error: {exc!r}"
        finally:
            connections.close_all()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=fulfil, args=(o,)) for o in orders]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ok"] * 10 + ["short"] * 10, outcomes
    stock.refresh_from_db()
    assert (stock.quantity, stock.quantity_allocated) == (10, 10)
    assert Allocation.objects.count() == 10
    assert Order.objects.filter(status=Order.Status.FULFILLING).count() == 10


def test_fulfilment_retried_after_a_crash_allocates_once():
    product = ProductFactory()
    StockFactory(product=product, warehouse=WarehouseFactory(), quantity=10)
    order = OrderFactory(status=Order.Status.APPROVED)
    OrderItemFactory(order=order, product=product, quantity=4)
    order_fulfil(order=order)
    # The worker died before recording success; the redelivered attempt runs it again, twice.
    threads = [
        threading.Thread(target=lambda: (order_fulfil(order=order), connections.close_all()))
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert Stock.objects.get().quantity_allocated == 4
    assert Allocation.objects.count() == 1
