"""Interleavings that used to leave an order in the wrong state, replayed step by step."""

import pytest
from django.conf import settings as django_settings

from aktina.jobs.exceptions import PermanentError
from aktina.jobs.lifecycle import run_claim, run_error, run_succeed
from aktina.jobs.models import JobRun
from aktina.jobs.selectors import queue_stats
from aktina.jobs.worker import job_for_run, worker_id
from orders.models import CarrierShipment, Order
from orders.services import (
    order_approve,
    order_cancel,
    order_create,
    order_fulfil,
    order_reject,
    order_shipment_create,
    stock_receive,
)

pytestmark = pytest.mark.django_db
S = Order.Status
FULFILMENT = "orders.jobs.ProcessOrderFulfillmentJob"


def _claim(run: JobRun) -> JobRun:
    return run_claim(
        run_id=run.pk,
        timeout=run.timeout,
        worker=worker_id(),
        grace=django_settings.JOBS_LEASE_GRACE_SECONDS,
    )


def test_stock_arriving_between_shortage_and_run_end_starts_a_fresh_fulfilment(
    customer, stock, committed, run_jobs
):
    # 60 wanted, 50 on hand: the fulfilment run will find a shortage.
    order = order_create(customer=customer, items=[{"sku": "SKU-A", "quantity": 60}])
    order_approve(order=order)
    run = _claim(JobRun.objects.get(job_name=FULFILMENT))
    job = job_for_run(run)
    # Step 1 of the run: the shortage is recorded (and committed, in production).
    error = None
    try:
        job.handle()
    except PermanentError as exc:
        error = exc
    order.refresh_from_db()
    assert order.status == S.INVENTORY_SHORTAGE
    # Between the two steps: stock arrives and the bulk re-queue runs.
    with committed():
        stock_receive(sku="SKU-A", warehouse=stock.warehouse, quantity=20)
    run_jobs()  # the claimed run is `running`: work_off leaves it alone
    # Step 2 of the run: it ends (failed for good before the fix, which called failed()).
    with committed():
        if error is not None:
            run_error(run=run, job=job, exc=error, permanent=True)
        else:
            run_succeed(run=run)
    run_jobs()
    order.refresh_from_db()
    assert order.status == S.SHIPPED, order.failure_reason


def test_a_shortage_later_fulfilled_leaves_no_failed_run(customer, stock, run_jobs, committed):
    order = order_create(customer=customer, items=[{"sku": "SKU-A", "quantity": 60}])
    run_jobs()
    order.refresh_from_db()
    assert order.status == S.INVENTORY_SHORTAGE
    with committed():
        stock_receive(sku="SKU-A", warehouse=stock.warehouse, quantity=20)
    run_jobs()
    order.refresh_from_db()
    assert order.status == S.SHIPPED
    # The queue page, `jobs stats` and the admin's failed filter all count failed rows.
    assert not JobRun.objects.filter(status=JobRun.Status.FAILED).exists()
    assert sum(q["failed"] for q in queue_stats()) == 0


class CancellingCarrier:
    """A carrier whose call takes long enough for a manager to cancel the order meanwhile."""

    name = "cancelling"
    voided: list = []

    def create_shipment(self, order, *, idempotency_key):
        from orders.carriers import Shipment

        order_cancel(order=Order.objects.get(pk=order.pk), cancelled_by=None, reason="changed mind")
        return Shipment(tracking_number="CXL-1", label_url="", idempotency_key=idempotency_key)

    def void(self, shipment) -> None:
        CancellingCarrier.voided.append(shipment.tracking_number)


def test_an_order_cancelled_during_the_carrier_call_gets_no_shipment(customer, stock, settings):
    settings.ORDER_CARRIER_CLIENT = "tests.orders.test_races.CancellingCarrier"
    CancellingCarrier.voided = []
    order = order_create(customer=customer, items=[{"sku": "SKU-A", "quantity": 5}])
    order_approve(order=order)
    order_fulfil(order=order)
    order_shipment_create(order=order)
    order.refresh_from_db()
    assert (order.status, order.tracking_number, order.label_url) == (S.CANCELLED, "", "")
    assert CancellingCarrier.voided == ["CXL-1"]
    stock.refresh_from_db()
    assert (stock.quantity, stock.quantity_allocated) == (50, 0)


def test_the_local_carrier_records_a_void(customer, stock):
    from orders.carriers import LocalCarrier

    order = order_create(customer=customer, items=[{"sku": "SKU-A", "quantity": 1}])
    carrier = LocalCarrier()
    shipment = carrier.create_shipment(order, idempotency_key="k-1")
    carrier.void(shipment)
    assert CarrierShipment.objects.get(tracking_number=shipment.tracking_number).voided_at


REMINDER = "orders.jobs.ProcessOrderReminderJob"


@pytest.mark.parametrize("decide", ["approve", "reject", "cancel"])
def test_deciding_an_approval_cancels_the_pending_reminder(
    decide, customer, stock, run_jobs, committed, manager, settings
):
    settings.ORDER_AUTO_APPROVE_LIMIT = 0
    order = order_create(customer=customer, items=[{"sku": "SKU-A", "quantity": 1}])
    with committed():
        from aktina.jobs.testing import work_off

        work_off(queue="order-approval")
    order.refresh_from_db()
    assert order.status == S.AWAITING_APPROVAL
    reminder = JobRun.objects.get(job_name=REMINDER)
    assert reminder.status == JobRun.Status.QUEUED
    with committed():
        if decide == "approve":
            order_approve(order=order, approved_by=manager)
        elif decide == "reject":
            order_reject(order=order, reason="no", rejected_by=manager)
        else:
            order_cancel(order=order, cancelled_by=customer)
    reminder.refresh_from_db()
    assert reminder.status == JobRun.Status.CANCELLED
