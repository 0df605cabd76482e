"""The carrier client sends an idempotency key derived from the order, so a call repeated after
a kill cannot ship twice; the recording carrier behaves like real carrier APIs."""

import pytest

from orders.carriers import shipment_idempotency_key
from orders.models import Order
from orders.services import (
    order_approve,
    order_cancel,
    order_create,
    order_fulfil,
    order_shipment_create,
)
from tests import recording as recording_module

pytestmark = pytest.mark.django_db


@pytest.fixture
def recording(settings, monkeypatch, tmp_path):
    settings.ORDER_CARRIER_CLIENT = "tests.recording.RecordingCarrier"
    monkeypatch.setenv("RECORDING_CARRIER_PATH", str(tmp_path / "carrier.sqlite3"))
    return recording_module


def _fulfilling(customer):
    order = order_create(customer=customer, items=[{"sku": "SKU-A", "quantity": 1}])
    order_approve(order=order)
    return order_fulfil(order=order)


def test_without_a_key_every_call_creates_a_shipment(customer, stock, recording):
    order = _fulfilling(customer)
    carrier = recording.RecordingCarrier()
    a = carrier.create_shipment(order, idempotency_key="")
    b = carrier.create_shipment(order, idempotency_key="")
    assert a.tracking_number != b.tracking_number
    assert recording.counts() == {"calls": 2, "shipments": 2, "voided": 0, "duplicate_shipments": 1}


def test_the_same_key_returns_the_same_shipment(customer, stock, recording):
    order = _fulfilling(customer)
    carrier = recording.RecordingCarrier()
    a = carrier.create_shipment(order, idempotency_key="k")
    b = carrier.create_shipment(order, idempotency_key="k")
    assert a == b
    assert recording.counts() == {"calls": 2, "shipments": 1, "voided": 0, "duplicate_shipments": 0}


def test_a_call_repeated_after_a_kill_does_not_ship_twice(customer, stock, recording, monkeypatch):
    from orders.services import fulfilment

    class WorkerKilled(BaseException):
        pass

    order = _fulfilling(customer)
    lock = fulfilment.order_lock

    def killed(order):
        raise WorkerKilled

    # The worker dies after the carrier answered and before the tracking number was stored.
    monkeypatch.setattr(fulfilment, "order_lock", killed)
    with pytest.raises(WorkerKilled):
        order_shipment_create(order=order)
    assert Order.objects.get(pk=order.pk).tracking_number == ""
    monkeypatch.setattr(fulfilment, "order_lock", lock)
    order_shipment_create(order=order)
    assert Order.objects.get(pk=order.pk).status == Order.Status.SHIPPED
    counts = recording.counts()
    assert (counts["calls"], counts["shipments"], counts["duplicate_shipments"]) == (2, 1, 0)


def test_the_key_is_derived_from_the_order(customer, stock):
    order = _fulfilling(customer)
    assert shipment_idempotency_key(order) == shipment_idempotency_key(
        Order.objects.get(pk=order.pk)
    )
    assert order.reference in shipment_idempotency_key(order)


def test_the_tally_counts_per_order_and_a_void_takes_a_shipment_back(customer, stock, recording):
    order = _fulfilling(customer)
    other = _fulfilling(customer)
    carrier = recording.RecordingCarrier()
    first = carrier.create_shipment(order, idempotency_key="a")
    carrier.create_shipment(order, idempotency_key="a")
    carrier.create_shipment(other)
    carrier.void(first)
    assert recording.tally() == {
        "carrier_calls": {order.pk: 2, other.pk: 1},
        "shipments": {order.pk: 1, other.pk: 1},
        "voided": {order.pk: 1},
    }
    recording.reset()
    assert recording.counts() == {"calls": 0, "shipments": 0, "voided": 0, "duplicate_shipments": 0}


def test_a_shipment_for_an_order_cancelled_during_the_call_is_voided(
    customer, stock, recording, monkeypatch
):
    order = _fulfilling(customer)
    create = recording.RecordingCarrier.create_shipment

    def cancelled_meanwhile(self, order, *, idempotency_key=""):
        shipment = create(self, order, idempotency_key=idempotency_key)
        order_cancel(order=order)  # by operations, while the label was being made
        return shipment

    monkeypatch.setattr(recording.RecordingCarrier, "create_shipment", cancelled_meanwhile)
    order_shipment_create(order=order)
    assert Order.objects.get(pk=order.pk).tracking_number == ""
    assert recording.counts() == {"calls": 1, "shipments": 1, "voided": 1, "duplicate_shipments": 0}
