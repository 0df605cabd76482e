"""Carrier clients: who turns a fulfilled order into a tracking number and a printable label.

`carrier_client()` returns the configured client (setting ORDER_CARRIER_CLIENT, a dotted path;
the built-in `LocalCarrier` by default). A real carrier's client implements `CarrierClient` and
must treat the order reference as an idempotency key: the label job may call it more than once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from django.conf import settings
from django.urls import reverse
from django.utils.module_loading import import_string

if TYPE_CHECKING:
    from orders.models import Order


@dataclass(frozen=True)
class Shipment:
    tracking_number: str
    label_url: str


class CarrierError(Exception):
    """The carrier could not create the shipment now (a retry may help)."""


class CarrierClient(Protocol):
    name: str

    def create_shipment(self, order: Order) -> Shipment: ...


class LocalCarrier:
    """Our own delivery service: tracking numbers derived from the order, labels served by us.

    The tracking number is a function of the order reference, so calling it twice for one order
    (a retried job) issues the same shipment.
    """

    name = "local"

    def create_shipment(self, order: Order) -> Shipment:
        digest = hashlib.sha256(f"{settings.SECRET_KEY}:{order.reference}".encode()).hexdigest()
        tracking = f"AKT{int(digest[:15], 16) % 10**12:012d}"
        return Shipment(
            tracking_number=tracking,
            label_url=reverse("orders:label", kwargs={"reference": order.reference}),
        )


def carrier_client() -> CarrierClient:
    path = settings.ORDER_CARRIER_CLIENT
    return import_string(path)()
