"""What people read about an order: e-mails and the timeline say something they can act on."""

from decimal import Decimal

import pytest

from orders.models import Order, OrderStatusChange, Stock
from orders.services import (
    InsufficientStock,
    order_approve,
    order_create,
    order_fulfil,
    order_mark_inventory_shortage,
    order_request_approval,
)

pytestmark = pytest.mark.django_db
S = Order.Status


def place(customer, quantity=1):
    return order_create(customer=customer, items=[{"sku": "SKU-A", "quantity": quantity}])


def test_the_approval_request_links_to_the_order_in_the_admin_absolutely(
    customer, stock, manager, settings
):
    settings.SITE_URL = "https://scm.example.com"
    order = place(customer)
    order_request_approval(order=order)
    body = manager.notifications.get(kind="order_approval_requested").body
    assert f"https://scm.example.com/admin/orders/order/{order.pk}/change/" in body


def test_the_customer_is_told_the_next_step_of_a_shortage_not_our_stock_counts(
    customer, stock, inventory_manager
):
    Stock.objects.filter(pk=stock.pk).update(quantity=7)
    order = place(customer, quantity=40)
    order_approve(order=order)
    with pytest.raises(InsufficientStock) as shortage:
        order_fulfil(order=order)
    order_mark_inventory_shortage(order=order, reason=shortage.value.detail)

    told = customer.notifications.get(kind="order_waiting_for_stock").body
    told = told.replace(order.reference, "")
    assert "40" not in told
    assert "7" not in told
    assert "SKU-A" in told  # what it waits for, in the catalogue's words
    assert "cancel" in told  # what they can do meanwhile
    # Inventory managers keep the figures they act on.
    staff = inventory_manager.notifications.get(kind="inventory_shortage").body
    assert "needs 40" in staff
    assert "has 7" in staff


def test_the_timeline_says_why_an_order_waits_for_approval(
    customer, stock, manager, settings, run_jobs, committed
):
    settings.ORDER_AUTO_APPROVE_LIMIT = Decimal("5.00")
    with committed():
        order = place(customer)  # 10.00, over the limit
    run_jobs()
    entry = OrderStatusChange.objects.get(order=order, to_status=S.AWAITING_APPROVAL)
    assert "10.00" in entry.note
    assert "5.00" in entry.note
