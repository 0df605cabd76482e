import pytest

from aktina.jobs.models import JobRun
from orders.models import Order, Stock
from orders.services import order_create

pytestmark = pytest.mark.django_db
S = Order.Status
CHANGELIST = "/admin/orders/order/"


def test_changelist_and_change_page_render(client, superuser, customer, stock):
    order = order_create(customer=customer, items=[{"sku": "SKU-A", "quantity": 1}])
    client.force_login(superuser)
    assert client.get(CHANGELIST, {"status__exact": "pending"}).status_code == 200
    assert client.get(f"{CHANGELIST}{order.pk}/change/").status_code == 200


def test_approve_and_cancel_actions_call_the_services(client, superuser, customer, stock):
    a = order_create(customer=customer, items=[{"sku": "SKU-A", "quantity": 1}])
    b = order_create(customer=customer, items=[{"sku": "SKU-A", "quantity": 1}])
    client.force_login(superuser)
    client.post(CHANGELIST, {"action": "approve", "_selected_action": [a.pk]})
    client.post(CHANGELIST, {"action": "cancel", "_selected_action": [b.pk]})
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.status, a.approved_by) == (S.APPROVED, superuser)
    assert b.status == S.CANCELLED
    # A refused transition is a message, not a 500.
    response = client.post(CHANGELIST, {"action": "approve", "_selected_action": [b.pk]})
    assert response.status_code == 302


def test_reject_asks_for_a_reason(client, superuser, customer, stock):
    order = order_create(customer=customer, items=[{"sku": "SKU-A", "quantity": 1}])
    client.force_login(superuser)
    page = client.post(CHANGELIST, {"action": "reject", "_selected_action": [order.pk]})
    assert page.status_code == 200
    assert b"reason" in page.content
    client.post(
        CHANGELIST,
        {"action": "reject", "_selected_action": [order.pk], "apply": "1", "reason": "fraud"},
    )
    order.refresh_from_db()
    assert (order.status, order.rejection_reason) == (S.REJECTED, "fraud")


def test_managers_see_approve_but_operations_do_not(client, manager, operations, customer, stock):
    order_create(customer=customer, items=[{"sku": "SKU-A", "quantity": 1}])
    client.force_login(manager)
    assert b'value="approve"' in client.get(CHANGELIST).content
    client.force_login(operations)
    assert b'value="approve"' not in client.get(CHANGELIST).content


def test_retry_fulfilment_requeues_a_short_order(client, superuser, customer, stock, run_jobs):
    order = order_create(customer=customer, items=[{"sku": "SKU-A", "quantity": 60}])
    run_jobs()
    order.refresh_from_db()
    assert order.status == S.INVENTORY_SHORTAGE
    Stock.objects.filter(pk=stock.pk).update(quantity=100)
    client.force_login(superuser)
    client.post(CHANGELIST, {"action": "retry_fulfilment", "_selected_action": [order.pk]})
    run_jobs()
    order.refresh_from_db()
    assert order.status == S.SHIPPED


def test_stock_receive_action(client, inventory_manager, stock):
    client.force_login(inventory_manager)
    url = "/admin/orders/stock/"
    form = client.post(url, {"action": "receive", "_selected_action": [stock.pk]})
    assert form.status_code == 200
    client.post(
        url, {"action": "receive", "_selected_action": [stock.pk], "apply": "1", "quantity": "7"}
    )
    stock.refresh_from_db()
    assert stock.quantity == 57
    assert JobRun.objects.filter(job_name__endswith="ProcessBulkOrdersJob").exists()


def test_order_added_in_admin_starts_the_workflow(client, superuser, customer, stock):
    client.force_login(superuser)
    response = client.post(
        "/admin/orders/order/add/",
        {
            "customer": customer.pk,
            "status": "pending",
            "priority": "normal",
            "items-TOTAL_FORMS": "1",
            "items-INITIAL_FORMS": "0",
            "items-0-product": stock.product.pk,
            "items-0-quantity": "3",
            "items-0-unit_price": "10.00",
            "status_changes-TOTAL_FORMS": "0",
            "status_changes-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    order = Order.objects.get()
    assert str(order.total_amount) == "30.00"
    assert JobRun.objects.filter(job_name__endswith="ProcessOrderApprovalJob").count() == 1


def _change_form(order, **overrides) -> dict:
    """Everything the order's change form would post, plus `overrides`."""
    item = order.items.get()
    data = {
        "customer": order.customer_id,
        "status": order.status,
        "priority": order.priority,
        "warehouse": "",
        "tracking_number": "",
        "items-TOTAL_FORMS": "1",
        "items-INITIAL_FORMS": "1",
        "items-0-id": item.pk,
        "items-0-order": order.pk,
        "items-0-product": item.product_id,
        "items-0-quantity": str(item.quantity),
        "items-0-unit_price": str(item.unit_price),
        "status_changes-TOTAL_FORMS": "0",
        "status_changes-INITIAL_FORMS": "0",
    }
    return {**data, **overrides}


def test_change_form_cannot_move_status_warehouse_or_lines(client, superuser, customer, stock):
    order = order_create(customer=customer, items=[{"sku": "SKU-A", "quantity": 60}])
    Order.objects.filter(pk=order.pk).update(status=S.INVENTORY_SHORTAGE)
    client.force_login(superuser)
    client.post(
        f"{CHANGELIST}{order.pk}/change/",
        _change_form(
            order,
            status="shipped",
            warehouse=stock.warehouse.pk,
            tracking_number="FAKE-1",
            **{"items-0-quantity": "1", "items-0-unit_price": "0.01"},
        ),
    )
    order.refresh_from_db()
    item = order.items.get()
    assert (order.status, order.warehouse_id, order.tracking_number) == (
        S.INVENTORY_SHORTAGE,
        None,
        "",
    )
    assert (item.quantity, str(item.unit_price), str(order.total_amount)) == (60, "10.00", "600.00")
    assert not order.status_changes.filter(to_status=S.SHIPPED).exists()


def test_change_page_renders_no_editable_status_or_line_controls(
    client, superuser, customer, stock
):
    order = order_create(customer=customer, items=[{"sku": "SKU-A", "quantity": 1}])
    client.force_login(superuser)
    page = client.get(f"{CHANGELIST}{order.pk}/change/").content.decode()
    for name in ('name="status"', 'name="warehouse"', 'name="items-0-quantity"'):
        assert name not in page
    assert order.reference in page


def test_stock_quantities_and_allocations_are_not_editable_by_hand(
    client, superuser, customer, stock
):
    client.force_login(superuser)
    client.post(
        f"/admin/orders/stock/{stock.pk}/change/",
        {
            "product": stock.product_id,
            "warehouse": stock.warehouse_id,
            "quantity": "999",
            "quantity_allocated": "5",
        },
    )
    stock.refresh_from_db()
    assert (stock.quantity, stock.quantity_allocated) == (50, 0)
    page = client.get(f"/admin/orders/stock/{stock.pk}/change/").content.decode()
    assert 'name="quantity"' not in page
    assert client.get("/admin/orders/allocation/add/").status_code == 403


def test_stock_rows_cannot_be_deleted_in_the_admin(client, superuser, stock):
    client.force_login(superuser)
    assert client.get(f"/admin/orders/stock/{stock.pk}/delete/").status_code == 403
    client.post(f"/admin/orders/stock/{stock.pk}/delete/", {"post": "yes"})
    client.post(
        "/admin/orders/stock/",
        {"action": "delete_selected", "_selected_action": [stock.pk], "post": "yes"},
    )
    assert Stock.objects.filter(pk=stock.pk, quantity=50).exists()


def test_stock_adjust_action_needs_a_reason_and_records_it(client, inventory_manager, stock):
    client.force_login(inventory_manager)
    url = "/admin/orders/stock/"
    client.post(
        url,
        {
            "action": "adjust",
            "_selected_action": [stock.pk],
            "apply": "1",
            "quantity": "45",
            "reason": "cycle count: 5 damaged",
        },
    )
    stock.refresh_from_db()
    assert stock.quantity == 45
    adjustment = stock.adjustments.get()
    assert (adjustment.delta, adjustment.reason) == (-5, "cycle count: 5 damaged")
