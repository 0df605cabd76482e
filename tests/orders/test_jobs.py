"""The whole workflow with jobs run inline through the worker's code path."""

from decimal import Decimal

import pytest

from aktina.jobs.models import JobRun
from orders.models import Allocation, Order, Stock
from orders.services import order_approve, order_cancel, order_create, stock_receive
from tests.factories import ProductFactory, StockFactory, WarehouseFactory

pytestmark = pytest.mark.django_db
S = Order.Status


def place(customer, committed, *lines, **kwargs):
    with committed():
        return order_create(
            customer=customer, items=[{"sku": s, "quantity": q} for s, q in lines], **kwargs
        )


def status(order) -> str:
    order.refresh_from_db()
    return order.status


def test_small_order_runs_to_shipped(customer, stock, run_jobs, committed, settings):
    order = place(customer, committed, ("SKU-A", 3))
    run_jobs()
    order.refresh_from_db()
    assert order.status == S.SHIPPED
    assert order.tracking_number.startswith("AKT")
    assert order.approved_by is None
    assert order.approved_at
    stock.refresh_from_db()
    assert (stock.quantity, stock.quantity_allocated) == (47, 0)
    kinds = set(customer.notifications.values_list("kind", flat=True))
    assert kinds == {"order_fulfilling", "order_shipped"}
    names = set(JobRun.objects.values_list("job_name", flat=True))
    assert {
        "orders.jobs.ProcessOrderApprovalJob",
        "orders.jobs.ProcessOrderFulfillmentJob",
        "orders.jobs.SendOrderCompletionNotificationJob",
        "orders.jobs.GenerateShippingLabelJob",
    } <= names
    assert not JobRun.objects.exclude(status=JobRun.Status.SUCCEEDED).exists()
    timeline = list(order.status_changes.values_list("to_status", flat=True))
    assert timeline == [S.PENDING, S.APPROVED, S.FULFILLING, S.SHIPPED]


def test_large_order_waits_for_a_manager_and_reminds(customer, stock, manager, run_jobs, committed):
    stock.product.unit_price = Decimal("400.00")
    stock.product.save()
    order = place(customer, committed, ("SKU-A", 30))  # 12 000 >= 10 000
    run_jobs()
    assert status(order) == S.AWAITING_APPROVAL
    kinds = list(manager.notifications.values_list("kind", flat=True))
    assert "order_approval_requested" in kinds
    assert "order_approval_reminder" in kinds
    assert manager.notifications.filter(kind="order_approval_reminder").count() == 3
    with committed():
        order_approve(order=order, approved_by=manager)
    run_jobs()
    assert status(order) == S.SHIPPED


def test_staff_auto_approve_skips_the_manager(customer, stock, manager, run_jobs, committed):
    stock.product.unit_price = Decimal("1000.00")
    stock.product.save()
    order = place(customer, committed, ("SKU-A", 20), auto_approve=True, placed_by=manager)
    run_jobs()
    assert status(order) == S.SHIPPED


def test_shortage_ends_the_run_frees_its_key_and_tells_inventory_managers(
    customer, stock, inventory_manager, run_jobs, committed
):
    order = place(customer, committed, ("SKU-A", 80))
    run_jobs()
    assert status(order) == S.INVENTORY_SHORTAGE
    run = JobRun.objects.get(job_name__endswith="ProcessOrderFulfillmentJob")
    # Not a failure an operator must act on: the order's status says it waits for stock.
    assert (run.status, run.attempts, run.unique_active) == (JobRun.Status.SUCCEEDED, 1, False)
    assert inventory_manager.notifications.filter(kind="inventory_shortage").count() == 1
    assert not customer.notifications.filter(kind="order_fulfilling").exists()


def test_received_stock_requeues_short_orders_oldest_first(customer, stock, run_jobs, committed):
    first = place(customer, committed, ("SKU-A", 40))
    second = place(customer, committed, ("SKU-A", 40))
    third = place(customer, committed, ("SKU-A", 40))
    # Only one fits in 50; the other two run short.
    Stock.objects.filter(pk=stock.pk).update(quantity=10)
    run_jobs()
    assert [status(o) for o in (first, second, third)] == [S.INVENTORY_SHORTAGE] * 3
    with committed():
        stock_receive(sku="SKU-A", warehouse="ATH", quantity=75)  # 85: room for two of three
    run_jobs()
    statuses = [status(o) for o in (first, second, third)]
    assert statuses == [S.SHIPPED, S.SHIPPED, S.INVENTORY_SHORTAGE]
    stock.refresh_from_db()
    assert (stock.quantity, stock.quantity_allocated) == (5, 0)


def test_bulk_requeue_works_in_chunks(customer, stock, run_jobs, committed, monkeypatch):
    from orders import jobs

    monkeypatch.setattr(jobs, "BULK_CHUNK", 2)
    Stock.objects.filter(pk=stock.pk).update(quantity=0)
    orders = [place(customer, committed, ("SKU-A", 1)) for _ in range(5)]
    run_jobs()
    assert {status(o) for o in orders} == {S.INVENTORY_SHORTAGE}
    with committed():
        stock_receive(sku="SKU-A", warehouse="ATH", quantity=5)
    run_jobs()
    assert {status(o) for o in orders} == {S.SHIPPED}
    assert JobRun.objects.filter(job_name__endswith="ProcessBulkOrdersJob").count() == 3


def test_fulfilment_failure_after_retries_marks_order_and_tells_operations(
    customer, stock, operations, run_jobs, committed, monkeypatch
):
    from orders import jobs

    def broken(*, order):
        raise ConnectionError("warehouse system down")

    monkeypatch.setattr(jobs, "order_fulfil", broken)
    order = place(customer, committed, ("SKU-A", 1))
    run_jobs()
    order.refresh_from_db()
    assert order.status == S.FULFILLMENT_FAILED
    assert "warehouse system down" in order.failure_reason
    run = JobRun.objects.get(job_name__endswith="ProcessOrderFulfillmentJob")
    assert (run.status, run.attempts) == (JobRun.Status.FAILED, 3)
    assert operations.notifications.filter(kind="fulfillment_failed").count() == 1
    stock.refresh_from_db()
    assert stock.quantity_allocated == 0


def test_fulfilment_rerun_after_a_crash_allocates_once(customer, stock, run_jobs, committed):
    """The worker died after the fulfilment committed but before the run was recorded: the
    sweeper re-runs the job; the order is fulfilling already, so nothing is allocated twice."""
    from aktina.jobs.worker import perform

    order = place(customer, committed, ("SKU-A", 4))
    with committed():
        order_approve(order=order)
    run = JobRun.objects.get(job_name__endswith="ProcessOrderFulfillmentJob")
    from orders.services import order_fulfil

    with committed():
        order_fulfil(order=order)  # the first attempt's work, committed; the run still queued
    with committed():
        perform(run.pk, run.timeout)  # the redelivered attempt
    run.refresh_from_db()
    assert run.status == JobRun.Status.SUCCEEDED
    stock.refresh_from_db()
    assert stock.quantity_allocated == 4
    assert Allocation.objects.count() == 1
    assert JobRun.objects.filter(job_name__endswith="GenerateShippingLabelJob").count() == 1


def test_cancelled_order_drops_its_pending_label(customer, stock, run_jobs, committed, manager):
    order = place(customer, committed, ("SKU-A", 4))
    from aktina.jobs.testing import work_off

    with committed():
        work_off(queue="order-approval")
        work_off(queue="order-processing")  # fulfilment; the label is still delayed
    assert status(order) == S.FULFILLING
    with committed():
        order_cancel(order=order, cancelled_by=manager)
    run_jobs()
    assert status(order) == S.CANCELLED
    stock.refresh_from_db()
    assert (stock.quantity, stock.quantity_allocated) == (50, 0)
    label = JobRun.objects.get(job_name__endswith="GenerateShippingLabelJob")
    assert label.status == JobRun.Status.SUCCEEDED  # it ran and found nothing to do
    order.refresh_from_db()
    assert not order.tracking_number


def test_urgent_workflow_stays_on_the_urgent_queue(customer, stock, manager, run_jobs, committed):
    order = place(customer, committed, ("SKU-A", 1), priority="urgent", placed_by=manager)
    run_jobs()
    assert status(order) == S.SHIPPED
    queues = set(
        JobRun.objects.filter(job_name__startswith="orders.jobs.").values_list("queue", flat=True)
    )
    assert queues == {"urgent"}


def test_label_job_is_rate_limited_across_workers(customer, run_jobs, committed, settings):
    """11 labels due at once: 10 start, the 11th is released (no attempt spent) for later."""
    from aktina.jobs.testing import work_off

    w = WarehouseFactory()
    StockFactory(product=ProductFactory(sku="R"), warehouse=w, quantity=100)
    orders = [place(customer, committed, ("R", 1)) for _ in range(11)]
    with committed():
        work_off(queue="order-approval")
        work_off(queue="order-processing", include_delayed=True)
    shipped = sum(status(o) == S.SHIPPED for o in orders)
    assert shipped == 10
    waiting = JobRun.objects.get(
        job_name__endswith="GenerateShippingLabelJob", status=JobRun.Status.QUEUED
    )
    assert waiting.attempts == 0
