import pytest

from orders.allocation import InsufficientStock, allocate_order, warehouse_plans
from orders.models import Allocation, Order, Stock
from tests.factories import (
    OrderFactory,
    OrderItemFactory,
    ProductFactory,
    StockFactory,
    WarehouseFactory,
)

pytestmark = pytest.mark.django_db


def order_with(*lines):
    order = OrderFactory(status=Order.Status.APPROVED)
    for product, quantity in lines:
        OrderItemFactory(order=order, product=product, quantity=quantity)
    return order


def test_one_warehouse_must_hold_every_line():
    a, b = ProductFactory(), ProductFactory()
    w1, w2, w3 = WarehouseFactory(), WarehouseFactory(), WarehouseFactory()
    StockFactory(product=a, warehouse=w1, quantity=10)  # w1 lacks b
    StockFactory(product=b, warehouse=w2, quantity=10)  # w2 lacks a
    StockFactory(product=a, warehouse=w3, quantity=5)
    StockFactory(product=b, warehouse=w3, quantity=5)
    assert allocate_order(order=order_with((a, 3), (b, 3))) == w3
    assert {al.stock.warehouse for al in Allocation.objects.all()} == {w3}


def test_staging_capacity_counts_what_is_already_allocated():
    a = ProductFactory()
    small, big = WarehouseFactory(capacity=10), WarehouseFactory(capacity=100)
    StockFactory(product=a, warehouse=small, quantity=50, quantity_allocated=8)
    StockFactory(product=a, warehouse=big, quantity=50)
    # 8 staged + 3 > 10: the first warehouse is skipped although it has the stock.
    assert allocate_order(order=order_with((a, 3))) == big


def test_no_warehouse_raises_and_names_what_is_short():
    a = ProductFactory()
    StockFactory(product=a, warehouse=WarehouseFactory(), quantity=2)
    with pytest.raises(InsufficientStock, match="needs 3"):
        allocate_order(order=order_with((a, 3)))
    assert Stock.objects.get().quantity_allocated == 0


def test_lines_of_the_same_product_add_up():
    a = ProductFactory()
    StockFactory(product=a, warehouse=WarehouseFactory(), quantity=5)
    with pytest.raises(InsufficientStock):
        allocate_order(order=order_with((a, 3), (a, 3)))


def test_stale_snapshot_cannot_oversell(monkeypatch):
    """Another fulfilment takes the stock between our look and our update: the conditional
    UPDATE refuses, nothing is half-allocated."""
    a, b = ProductFactory(), ProductFactory()
    w = WarehouseFactory()
    sa = StockFactory(product=a, warehouse=w, quantity=5)
    StockFactory(product=b, warehouse=w, quantity=5)
    order = order_with((a, 2), (b, 2))
    from orders import allocation

    real = allocation.stock_snapshot

    def stale(product_ids):
        snapshot = real(product_ids)
        Stock.objects.filter(pk=sa.pk).update(quantity_allocated=4)  # a rival took 4 of 5
        return snapshot

    monkeypatch.setattr(allocation, "stock_snapshot", stale)
    with pytest.raises(InsufficientStock):
        allocate_order(order=order)
    assert list(Stock.objects.order_by("pk").values_list("quantity_allocated", flat=True)) == [4, 0]
    assert not Allocation.objects.exists()


def test_warehouse_plans_is_pure_and_in_pk_order():
    class Item:
        def __init__(self, pk, product_id, quantity):
            self.pk, self.product_id, self.quantity = pk, product_id, quantity

    items = [Item(1, 10, 2)]
    available = {(10, 2): (21, 5), (10, 1): (11, 5), (10, 3): (31, 1)}
    plans = warehouse_plans(
        items=items, available=available, staged={1: 99}, capacity={1: 100, 2: 100, 3: 100}
    )
    assert [p.warehouse_id for p in plans] == [2]
    assert plans[0].lines == {1: (21, 2)}
