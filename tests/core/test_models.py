"""Invariants the database itself enforces, on SQLite and PostgreSQL alike."""

import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction

from aktina.core.roles import ROLE_PERMISSIONS
from orders.models import Allocation, Order, Product, Stock, Warehouse
from tests.factories import OrderItemFactory, StockFactory

pytestmark = pytest.mark.django_db


def _violates(**changes):
    stock = StockFactory(quantity=5, quantity_allocated=0)
    for field, value in changes.items():
        setattr(stock, field, value)
    with pytest.raises(IntegrityError), transaction.atomic():
        stock.save()


def test_negative_stock_is_rejected():
    _violates(quantity=-1)


def test_over_allocation_is_rejected():
    _violates(quantity_allocated=6)


def test_negative_allocation_is_rejected():
    _violates(quantity_allocated=-1)


def test_zero_quantity_order_line_is_rejected():
    with pytest.raises(IntegrityError), transaction.atomic():
        OrderItemFactory(quantity=0)


def test_zero_quantity_allocation_is_rejected():
    item = OrderItemFactory()
    stock = StockFactory(product=item.product)
    with pytest.raises(IntegrityError), transaction.atomic():
        Allocation.objects.create(order_item=item, stock=stock, quantity=0)


def test_one_stock_row_per_product_and_warehouse():
    stock = StockFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Stock.objects.create(product=stock.product, warehouse=stock.warehouse, quantity=1)


def test_order_references_are_unique_and_readable():
    refs = {OrderItemFactory().order.reference for _ in range(20)}
    assert len(refs) == 20
    assert all(r.startswith("ORD-") and len(r) == 13 for r in refs)


def _snapshot():
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    return (
        sorted(Warehouse.objects.values_list("code", "capacity")),
        sorted(Product.objects.values_list("sku", "unit_price")),
        sorted(Stock.objects.values_list("product__sku", "warehouse__code", "quantity")),
        sorted(get_user_model().objects.values_list("username", "is_staff")),
        sorted(Group.objects.values_list("name", "permissions__codename")),
        Order.objects.count(),
    )


def test_seed_demo_twice_leaves_the_same_data():
    call_command("seed_demo", "--orders", "30", verbosity=0)
    first = _snapshot()
    call_command("seed_demo", "--orders", "30", verbosity=0)
    assert _snapshot() == first
    assert first[-1] == 30


def test_roles_exist_with_their_permissions():
    from django.contrib.auth.models import Group

    for role, perms in ROLE_PERMISSIONS.items():
        group = Group.objects.get(name=role)
        assert group.permissions.count() == len(perms)


def test_seed_demo_refuses_bad_arguments_in_one_line():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="--orders"):
        call_command("seed_demo", "--orders", "-1")
