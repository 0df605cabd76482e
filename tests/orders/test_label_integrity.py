"""Record-and-ship is one transaction (issue 19 §4): a worker that dies after the carrier
answered leaves either a shipped order or one with no shipment recorded, never a fulfilling
order holding a live label that operations could cancel."""

import pytest

from aktina.jobs.testing import work_off
from orders.jobs import GenerateShippingLabelJob
from orders.models import Order
from orders.services import fulfilment, order_cancel, order_create

pytestmark = pytest.mark.django_db


class WorkerKilled(BaseException):
    """Stands for kill -9 between two statements: nothing after it runs, no handler sees it."""


@pytest.fixture
def fulfilling(customer, stock, committed):
    with committed():
        order = order_create(customer=customer, items=[{"sku": "SKU-A", "quantity": 2}])
    work_off()  # approval and fulfilment; the label job waits for its delay
    order.refresh_from_db()
    assert order.status == Order.Status.FULFILLING
    return order


def test_a_worker_killed_between_record_and_ship_leaves_no_shipment(
    fulfilling, monkeypatch, as_user, manager
):
    def killed(**kwargs):
        raise WorkerKilled

    # The last step of shipping, after the tracking number is written: the worker dies there.
    monkeypatch.setattr(fulfilment, "allocations_ship", killed)
    with pytest.raises(WorkerKilled):
        GenerateShippingLabelJob(fulfilling).handle()
    order = Order.objects.get(pk=fulfilling.pk)
    assert (order.status, order.tracking_number) == (Order.Status.FULFILLING, "")

    order_cancel(order=order, cancelled_by=manager, reason="customer called")
    label = as_user(manager).get(f"/api/orders/{order.pk}/label/")
    assert label.status_code == 404


def test_the_retry_after_a_kill_ships_the_order(fulfilling, monkeypatch):
    original = fulfilment.allocations_ship

    def killed(**kwargs):
        raise WorkerKilled

    monkeypatch.setattr(fulfilment, "allocations_ship", killed)
    with pytest.raises(WorkerKilled):
        GenerateShippingLabelJob(fulfilling).handle()
    monkeypatch.setattr(fulfilment, "allocations_ship", original)
    GenerateShippingLabelJob(Order.objects.get(pk=fulfilling.pk)).handle()
    order = Order.objects.get(pk=fulfilling.pk)
    assert order.status == Order.Status.SHIPPED
    assert order.tracking_number
