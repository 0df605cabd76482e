"""The dashboard separates booked from shipped revenue (issue 19 §4): an order stuck in
inventory_shortage is booked, never shipped; cancelled and rejected orders are neither."""

from decimal import Decimal

import pytest

from analytics.selectors import dashboard_build
from analytics.services import metrics_apply_order, metrics_rebuild
from orders.models import Order
from tests.analytics.helpers import order_with_lines
from tests.factories import ProductFactory, UserFactory

pytestmark = pytest.mark.django_db
S = Order.Status


@pytest.fixture
def history():
    product = ProductFactory(unit_price=Decimal("10.00"))
    customer = UserFactory()
    for status, quantity in [
        (S.SHIPPED, 1),
        (S.COMPLETED, 2),
        (S.INVENTORY_SHORTAGE, 100),
        (S.CANCELLED, 1000),
        (S.REJECTED, 1000),
        (S.APPROVED, 5),
    ]:
        order_with_lines(customer=customer, lines=[(product, quantity)], status=status)


def _totals():
    totals = dashboard_build()["totals"]["last_30_days"]
    return totals["revenue"], totals["revenue_shipped"]


def test_shipped_revenue_counts_only_shipped_and_completed_orders(history):
    booked, shipped = _totals()
    assert booked == Decimal("1080.00")  # shipped, completed, shortage, approved
    assert shipped == Decimal("30.00")  # shipped and completed only


def test_a_rebuild_gives_the_same_split(history):
    metrics_rebuild()
    assert _totals() == (Decimal("1080.00"), Decimal("30.00"))


def test_shipping_an_order_moves_its_revenue_into_shipped(history):
    order = Order.objects.get(status=S.APPROVED)
    Order.objects.filter(pk=order.pk).update(status=S.SHIPPED)
    metrics_apply_order(order_id=order.pk)
    assert _totals() == (Decimal("1080.00"), Decimal("80.00"))
    day = dashboard_build()["days_30"][-1]
    assert day["revenue_shipped"] == Decimal("80.00")
