"""Carrier clients: who turns a fulfilled order into a tracking number and a printable label.

`carrier_client()` returns the configured client (setting ORDER_CARRIER_CLIENT, a dotted path;
the built-in `LocalCarrier` by default). A client implements `CarrierClient`:

- `create_shipment(order, *, idempotency_key)` — the label job may call it more than once (a
  retry, a run repeated after its worker was killed), so every call carries the key
  `shipment_idempotency_key(order)`, and the carrier answers a repeated key with the shipment it
  created first, as real carrier APIs do (an `Idempotency-Key` header).
- `void(shipment)` — cancel a shipment nobody will use (the order was cancelled during the call).

The recording carrier the tests and the chaos run use lives in `tests/recording.py`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django.utils.module_loading import import_string

from orders.models import CarrierShipment, Order


@dataclass(frozen=True)
class Shipment:
    tracking_number: str
    label_url: str
    idempotency_key: str = ""


class CarrierClient(Protocol):
    name: str

    def create_shipment(self, order: Order, *, idempotency_key: str) -> Shipment: ...

    def void(self, shipment: Shipment) -> None: ...


def shipment_idempotency_key(order: Order) -> str:
    """The key every shipment request for `order` carries: the same for every attempt."""
    return f"aktina-shipment-{order.reference}"


def label_url(order: Order) -> str:
    """Where the customer (token auth) and staff fetch the label of our own carrier."""
    return reverse("order-label", kwargs={"pk": order.pk})


class LocalCarrier:
    """Our own delivery service: tracking numbers derived from the order, labels served by us.

    The tracking number is a function of the order reference, so a repeated call issues the same
    shipment whatever the key; voids are recorded in `CarrierShipment`.
    """

    name = "local"

    def create_shipment(self, order: Order, *, idempotency_key: str) -> Shipment:
        digest = hashlib.sha256(f"{settings.SECRET_KEY}:{order.reference}".encode()).hexdigest()
        tracking = f"AKT{int(digest[:15], 16) % 10**12:012d}"
        return Shipment(
            tracking_number=tracking, label_url=label_url(order), idempotency_key=idempotency_key
        )

    def void(self, shipment: Shipment) -> None:
        CarrierShipment.objects.update_or_create(
            tracking_number=shipment.tracking_number,
            defaults={"carrier": self.name, "voided_at": timezone.now()},
            create_defaults={
                "carrier": self.name,
                "label_url": shipment.label_url,
                "voided_at": timezone.now(),
            },
        )


def carrier_client() -> CarrierClient:
    path = settings.ORDER_CARRIER_CLIENT
    return import_string(path)()
