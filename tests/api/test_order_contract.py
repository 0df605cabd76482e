"""What the order API says (issue 19 §3, issue 21 §5): strict JSON types on write, the approver
by username, an absolute label URL, and a label asked for too early says when it will exist."""

from decimal import Decimal

import pytest

from aktina.core import roles
from orders.models import Order
from orders.services import order_approve
from tests.api.conftest import body
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db
ORDERS = "/api/orders/"


@pytest.mark.parametrize(
    ("payload", "attr"),
    [
        (body(("SKU-A", "2")), "items.0.quantity"),
        (body(("SKU-A", 2.0)), "items.0.quantity"),
        (body(("SKU-A", True)), "items.0.quantity"),
        (body(("SKU-A", 1), auto_approve="true"), "auto_approve"),
    ],
)
def test_write_types_are_strict_json(as_user, customer, stock, payload, attr):
    response = as_user(customer).post(ORDERS, payload, format="json")
    assert response.status_code == 400, response.content[:300]
    assert response.json()["errors"][0]["attr"] == attr
    assert not Order.objects.exists()


def test_stock_receive_refuses_a_quantity_as_text(as_user, make_user, stock):
    api = as_user(make_user(roles.INVENTORY_MANAGER))
    payload = {"sku": "SKU-A", "warehouse": "ATH", "quantity": "3"}
    response = api.post("/api/stock/receive/", payload, format="json")
    assert response.status_code == 400
    stock.refresh_from_db()
    assert stock.quantity == 50


def test_approved_by_is_the_approvers_username(as_user, customer, make_user):
    manager = make_user(roles.MANAGER, username="mona")
    order = OrderFactory(customer=customer, status=Order.Status.AWAITING_APPROVAL)
    order_approve(order=order, approved_by=manager)
    data = as_user(manager).get(f"{ORDERS}{order.pk}/").json()
    assert data["approved_by"] == "mona"


def test_label_url_is_absolute(as_user, customer):
    order = OrderFactory(customer=customer, status=Order.Status.SHIPPED, tracking_number="TRK-1")
    data = as_user(customer).get(f"{ORDERS}{order.pk}/").json()
    assert data["label_url"] == f"http://testserver/api/orders/{order.pk}/label/"


def test_a_label_before_shipping_says_when_it_will_exist(as_user, customer, settings):
    settings.ORDER_LABEL_DELAY_SECONDS = 300
    order = OrderFactory(
        customer=customer, status=Order.Status.FULFILLING, total_amount=Decimal("1.00")
    )
    response = as_user(customer).get(f"{ORDERS}{order.pk}/label/")
    assert response.status_code == 404
    error = response.json()["errors"][0]
    assert error["code"] == "label_not_ready"
    assert "fulfilling" in error["detail"]
    assert "5 minutes" in error["detail"]


def test_a_line_above_max_orderable_is_a_backorder_the_response_says_so(as_user, customer, stock):
    # stock: 50 units of SKU-A in one warehouse.
    response = as_user(customer).post(ORDERS, body(("SKU-A", 51)), format="json")
    assert response.status_code == 201
    assert response.json()["items"][0]["backorder"] is True
    within = as_user(customer).post(ORDERS, body(("SKU-A", 50)), format="json")
    assert within.json()["items"][0]["backorder"] is False
