"""Per-line and per-receipt limits, and receipts that leave a record (issue 19 §4)."""

import pytest

from orders.models import Order, Stock, StockAdjustment

pytestmark = pytest.mark.django_db
ORDERS = "/api/orders/"
RECEIVE = "/api/stock/receive/"


def test_a_line_above_order_max_line_quantity_is_a_400_naming_the_limit(
    as_user, customer, stock, settings
):
    settings.ORDER_MAX_LINE_QUANTITY = 500
    payload = {"items": [{"sku": "SKU-A", "quantity": 501}]}
    response = as_user(customer).post(ORDERS, payload, format="json")
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["attr"] == "items.0.quantity"
    assert "ORDER_MAX_LINE_QUANTITY" in error["detail"]
    assert "500" in error["detail"]
    assert not Order.objects.exists()
    payload["items"][0]["quantity"] = 500
    assert as_user(customer).post(ORDERS, payload, format="json").status_code == 201


def test_a_receipt_is_recorded_with_who_when_how_many_and_the_reference(
    as_user, inventory_manager, stock
):
    payload = {"sku": "SKU-A", "warehouse": "ATH", "quantity": 7, "reference": "PO-2026-114"}
    response = as_user(inventory_manager).post(RECEIVE, payload, format="json")
    assert response.status_code == 200
    record = StockAdjustment.objects.get(stock=stock)
    assert (record.delta, record.actor, record.kind) == (7, inventory_manager, "receipt")
    assert "PO-2026-114" in record.reason
    assert record.created_at is not None


def test_a_receipt_above_the_per_call_maximum_is_refused(
    as_user, inventory_manager, stock, settings
):
    settings.STOCK_RECEIVE_MAX = 1000
    payload = {"sku": "SKU-A", "warehouse": "ATH", "quantity": 1001}
    response = as_user(inventory_manager).post(RECEIVE, payload, format="json")
    assert response.status_code == 400
    assert "STOCK_RECEIVE_MAX" in response.json()["errors"][0]["detail"]
    assert Stock.objects.get(pk=stock.pk).quantity == 50
    assert not StockAdjustment.objects.exists()


def test_staff_without_the_role_cannot_receive(as_user, make_user, stock):
    response = as_user(make_user(is_staff=True)).post(
        RECEIVE, {"sku": "SKU-A", "warehouse": "ATH", "quantity": 1}, format="json"
    )
    assert response.status_code == 403
    assert not StockAdjustment.objects.exists()
