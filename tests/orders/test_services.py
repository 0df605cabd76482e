from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from aktina.core import roles
from aktina.jobs.models import JobRun
from orders import signals
from orders.models import Allocation, Order, OrderStatusChange, Stock
from orders.services import (
    InsufficientStock,
    InvalidTransition,
    order_approve,
    order_cancel,
    order_complete,
    order_create,
    order_fulfil,
    order_reject,
    order_request_approval,
    order_ship,
    order_shipment_create,
    stock_receive,
)
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db
S = Order.Status


def place(customer, *lines, **kwargs):
    return order_create(
        customer=customer, items=[{"sku": s, "quantity": q} for s, q in lines], **kwargs
    )


def test_create_snapshots_prices_merges_duplicate_lines_and_totals(customer, stock):
    order = place(customer, ("SKU-A", 2), ("SKU-A", 3))
    item = order.items.get()
    assert (item.quantity, item.unit_price) == (5, Decimal("10.00"))
    assert order.total_amount == Decimal("50.00")
    stock.product.unit_price = Decimal("99.00")
    stock.product.save()
    item.refresh_from_db()
    assert item.unit_price == Decimal("10.00")


def test_create_sends_order_placed_in_the_transaction_and_dispatches_approval(customer, stock):
    placed = []

    def receiver(sender, order, **kwargs):
        placed.append(order)

    signals.order_placed.connect(receiver, weak=False)
    try:
        order = place(customer, ("SKU-A", 1))
        assert placed == [order]  # before commit: its receivers' runs commit with the order
    finally:
        signals.order_placed.disconnect(receiver)
    run = JobRun.objects.get(job_name="orders.jobs.ProcessOrderApprovalJob")
    assert run.payload["args"][0]["pk"] == order.pk
    assert run.queue == "order-approval"


def test_rolled_back_create_leaves_no_order_and_no_job(customer, stock):
    def place_then_fail():
        with transaction.atomic():
            place(customer, ("SKU-A", 1))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        place_then_fail()
    assert not Order.objects.exists()
    assert not JobRun.objects.exists()


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ([], "at least one line"),
        ([{"sku": "NOPE", "quantity": 1}], "Unknown sku"),
        ([{"sku": "SKU-A", "quantity": 0}], "above 0"),
        ([{"sku": "SKU-A", "quantity": "2"}], "whole number"),
        ([{"sku": "SKU-A", "quantity": 2.5}], "whole number"),
        ([{"sku": "SKU-A", "quantity": 10**12}], "at most"),
        ("SKU-A", "at least one line"),
    ],
)
def test_create_rejects_bad_lines(customer, stock, items, message):
    with pytest.raises(ValidationError) as info:
        order_create(customer=customer, items=items)
    assert message in str(info.value)
    assert not Order.objects.exists()


def test_create_rejects_inactive_product_and_too_many_lines(customer, stock, settings):
    ProductFactory(sku="OLD", active=False)
    with pytest.raises(ValidationError, match="no longer sold"):
        place(customer, ("OLD", 1))
    settings.ORDER_MAX_LINES = 2
    for i in range(3):
        ProductFactory(sku=f"L{i}")
    with pytest.raises(ValidationError, match="at most 2 lines"):
        place(customer, ("L0", 1), ("L1", 1), ("L2", 1))


def test_idempotency_key_returns_the_first_order(customer, stock):
    first = place(customer, ("SKU-A", 1), idempotency_key="k-1")
    again = place(customer, ("SKU-A", 7), idempotency_key="k-1")
    assert again.pk == first.pk
    assert Order.objects.count() == 1
    assert JobRun.objects.filter(job_name__endswith="ProcessOrderApprovalJob").count() == 1


def test_customers_cannot_place_urgent_or_preapproved_orders(customer, stock, settings):
    with pytest.raises(PermissionDenied, match="urgent"):
        place(customer, ("SKU-A", 1), priority="urgent")
    with pytest.raises(PermissionDenied, match="approve_order"):
        place(customer, ("SKU-A", 1), auto_approve=True)
    settings.ORDER_CUSTOMERS_MAY_SET_URGENT = True
    assert place(customer, ("SKU-A", 1), priority="urgent").priority == "urgent"


def test_urgent_order_jobs_go_to_the_urgent_queue(customer, stock, manager):
    order = place(customer, ("SKU-A", 1), priority="urgent", placed_by=manager)
    run = JobRun.objects.get(job_name__startswith="orders.jobs.", payload__args__0__pk=order.pk)
    assert run.queue == "urgent"


def test_approve_twice_is_harmless_and_fulfilment_dispatched_once(customer, stock, manager):
    order = place(customer, ("SKU-A", 1))
    order_approve(order=order, approved_by=manager)
    order_approve(order=order, approved_by=manager)
    order.refresh_from_db()
    assert (order.status, order.approved_by) == (S.APPROVED, manager)
    assert JobRun.objects.filter(job_name__endswith="ProcessOrderFulfillmentJob").count() == 1
    assert OrderStatusChange.objects.filter(order=order, to_status=S.APPROVED).count() == 1


def test_every_status_change_sends_order_status_changed(customer, stock, committed):
    changes = []

    def receiver(sender, order, old_status, new_status, **kwargs):
        changes.append((old_status, new_status))

    signals.order_status_changed.connect(receiver, weak=False)
    try:
        with committed():
            order = place(customer, ("SKU-A", 1))
            order_approve(order=order)
            order_fulfil(order=order)
            order_shipment_create(order=order)
            order_ship(order=order)
            order_complete(order=order)
    finally:
        signals.order_status_changed.disconnect(receiver)
    assert changes == [
        (S.PENDING, S.APPROVED),
        (S.APPROVED, S.FULFILLING),
        (S.FULFILLING, S.SHIPPED),
        (S.SHIPPED, S.COMPLETED),
    ]


def test_invalid_transitions_raise_with_current_status(customer, stock):
    order = place(customer, ("SKU-A", 1))
    order_reject(order=order, reason="credit check failed")
    with pytest.raises(InvalidTransition) as info:
        order_approve(order=order)
    assert info.value.current == S.REJECTED
    with pytest.raises(InvalidTransition):
        order_fulfil(order=order)
    with pytest.raises(InvalidTransition):
        order_complete(order=order)


def test_reject_needs_a_reason_and_tells_the_customer(customer, stock):
    order = place(customer, ("SKU-A", 1))
    with pytest.raises(ValidationError):
        order_reject(order=order, reason="  ")
    order_reject(order=order, reason="out of credit")
    order.refresh_from_db()
    assert order.rejection_reason == "out of credit"
    assert customer.notifications.get().kind == "order_rejected"


def test_request_approval_notifies_managers_and_schedules_a_reminder(customer, stock, manager):
    order = place(customer, ("SKU-A", 1))
    order_request_approval(order=order)
    order_request_approval(order=order)
    assert manager.notifications.filter(kind="order_approval_requested").count() == 1
    reminder = JobRun.objects.get(job_name__endswith="ProcessOrderReminderJob")
    assert (reminder.available_at - reminder.created_at).total_seconds() == pytest.approx(86400)


def test_fulfil_allocates_in_one_warehouse_and_sets_fulfilling(customer, stock):
    order = place(customer, ("SKU-A", 4))
    order_approve(order=order)
    order_fulfil(order=order)
    order_fulfil(order=order)  # a re-run allocates nothing more
    order.refresh_from_db()
    stock.refresh_from_db()
    assert order.status == S.FULFILLING
    assert order.warehouse == stock.warehouse
    assert order.fulfillment_started_at is not None
    assert stock.quantity_allocated == 4
    assert Allocation.objects.get().quantity == 4
    label = JobRun.objects.get(job_name__endswith="GenerateShippingLabelJob")
    assert (label.available_at - label.created_at).total_seconds() == pytest.approx(300)


def test_fulfil_without_stock_keeps_nothing(customer, stock):
    order = place(customer, ("SKU-A", 51))
    order_approve(order=order)
    with pytest.raises(InsufficientStock, match="needs 51"):
        order_fulfil(order=order)
    order.refresh_from_db()
    stock.refresh_from_db()
    assert order.status == S.APPROVED
    assert stock.quantity_allocated == 0
    assert not Allocation.objects.exists()


def test_cancel_releases_allocations(customer, stock, manager):
    order = place(customer, ("SKU-A", 4))
    order_approve(order=order)
    order_fulfil(order=order)
    with pytest.raises(InvalidTransition):  # the owner, while fulfilling: too late
        order_cancel(order=order, cancelled_by=customer)
    order_cancel(order=order, cancelled_by=manager)
    order_cancel(order=order, cancelled_by=manager)
    order.refresh_from_db()
    stock.refresh_from_db()
    assert order.status == S.CANCELLED
    assert order.cancelled_at
    assert stock.quantity_allocated == 0
    assert not Allocation.objects.exists()


def test_only_the_owner_or_staff_may_cancel(customer, stock, make_user):
    order = place(customer, ("SKU-A", 1))
    other = make_user(roles.CUSTOMER, username="bob")
    with pytest.raises(PermissionDenied):
        order_cancel(order=order, cancelled_by=other)
    order_cancel(order=order, cancelled_by=customer)
    order.refresh_from_db()
    assert order.status == S.CANCELLED


def test_cannot_cancel_after_shipping(customer, stock):
    order = place(customer, ("SKU-A", 1))
    order_approve(order=order)
    order_fulfil(order=order)
    order_shipment_create(order=order)
    order_ship(order=order)
    with pytest.raises(InvalidTransition):
        order_cancel(order=order)


def test_ship_takes_stock_out_and_notifies_the_customer(customer, stock):
    order = place(customer, ("SKU-A", 4))
    order_approve(order=order)
    order_fulfil(order=order)
    with pytest.raises(InvalidTransition):  # no shipment yet
        order_ship(order=order)
    order_shipment_create(order=order)
    tracking = Order.objects.get(pk=order.pk).tracking_number
    order_shipment_create(order=order)  # the same shipment, not a second one
    order_ship(order=order)
    order_ship(order=order)
    order.refresh_from_db()
    stock.refresh_from_db()
    assert order.status == S.SHIPPED
    assert order.tracking_number == tracking
    assert order.label_url == f"/api/orders/{order.pk}/label/"
    assert (stock.quantity, stock.quantity_allocated) == (46, 0)
    assert not Allocation.objects.exists()
    shipped = customer.notifications.get(kind="order_shipped")
    assert tracking in shipped.body


def test_stock_receive_adds_units_and_dispatches_bulk_requeue(stock, warehouse):
    received = stock_receive(sku="SKU-A", warehouse="ATH", quantity=5)
    assert received.quantity == 55
    assert JobRun.objects.filter(job_name__endswith="ProcessBulkOrdersJob").count() == 1
    other = ProductFactory(sku="NEW")
    created = stock_receive(sku="NEW", warehouse=warehouse, quantity=3)
    assert (created.product, created.quantity) == (other, 3)
    for bad in (0, -1, "3", True, 10**9):
        with pytest.raises(ValidationError):
            stock_receive(sku="SKU-A", warehouse="ATH", quantity=bad)
    with pytest.raises(ValidationError):
        stock_receive(sku="SKU-A", warehouse="NOWHERE", quantity=1)


def test_stock_constraint_holds_whatever_the_caller(stock):
    from django.db import IntegrityError

    with pytest.raises(IntegrityError), transaction.atomic():
        Stock.objects.filter(pk=stock.pk).update(quantity_allocated=51)


def test_shortage_reason_names_the_sku_and_the_figures(customer, product, stock, run_jobs):
    from tests.factories import StockFactory, WarehouseFactory

    StockFactory(product=product, warehouse=WarehouseFactory(code="SKG"), quantity=30)
    order = place(customer, ("SKU-A", 61))  # 80 in all, 50 at the best warehouse
    run_jobs()
    order.refresh_from_db()
    assert order.status == S.INVENTORY_SHORTAGE
    assert "SKU-A: needs 61, best warehouse has 50" in order.failure_reason
    assert str(product.pk) not in order.failure_reason.replace("61", "").replace("50", "")


def test_the_customer_is_told_the_order_waits_for_stock(customer, stock, run_jobs):
    order = place(customer, ("SKU-A", 60))
    run_jobs()
    note = customer.notifications.get(kind="order_waiting_for_stock")
    assert order.reference in note.subject
    assert "SKU-A" in note.body


def test_shortage_requeue_counts_what_each_order_takes_before_the_next(customer, stock):
    from orders.services import orders_shortage_requeue

    orders = [
        order_create(customer=customer, items=[{"sku": "SKU-A", "quantity": 40}]) for _ in range(3)
    ]
    # All three waited for stock (their fulfilment runs ended); 85 units: room for two.
    Order.objects.update(status=S.INVENTORY_SHORTAGE)
    JobRun.objects.all().delete()
    Stock.objects.filter(pk=stock.pk).update(quantity=85)

    last = orders_shortage_requeue(product=stock.product, limit=10)

    assert last is None  # fewer than `limit`: nothing left to look at
    statuses = [Order.objects.get(pk=o.pk).status for o in orders]
    assert statuses == [S.APPROVED, S.APPROVED, S.INVENTORY_SHORTAGE]
    assert orders_shortage_requeue(product=stock.product, limit=1) == orders[2].pk
