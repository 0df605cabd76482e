"""Carrier clients: who turns a fulfilled order into a tracking number and a printable label.

`carrier_client()` returns the configured client (setting ORDER_CARRIER_CLIENT, a dotted path;
the built-in `LocalCarrier` by default). A client implements `CarrierClient`:

- `create_shipment(order, *, idempotency_key)` — the label job may call it more than once (a
  retry, a run repeated after its worker was killed), so every call carries the key
  `shipment_idempotency_key(order)`, and the carrier answers a repeated key with the shipment it
  created first, as real carrier APIs do (an `Idempotency-Key` header).
- `void(shipment)` — cancel a shipment nobody will use (the order was cancelled during the call).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count
from django.urls import reverse
from django.utils import timezone
from django.utils.module_loading import import_string

from orders.models import CarrierCall, CarrierShipment, Order


@dataclass(frozen=True)
class Shipment:
    tracking_number: str
    label_url: str
    idempotency_key: str = ""


class CarrierError(Exception):
    """The carrier could not create the shipment now (a retry may help)."""


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


class RecordingCarrier:
    """A carrier that behaves like a real carrier API and counts what it was asked to do.

    Every call is a `CarrierCall` row and every shipment it creates a `CarrierShipment` row, so
    several worker processes on one database count together. Like a real API it honours the
    idempotency key (same key -> the same shipment, no new one) and, without a key, creates a new
    shipment on every call: a repeated call without the key is a second parcel.

    Counting API (tests, `bench/chaos.py`): `RecordingCarrier.counts()` returns
    `{"calls", "shipments", "voided", "duplicate_shipments"}` — `calls` counts create requests,
    `shipments` the shipments created, `voided` those voided, and `duplicate_shipments` the
    live (not voided) shipments beyond the first for the same order. `calls_per_order()` maps
    order reference -> create calls. `RecordingCarrier.reset()` empties both tables.
    """

    name = "recording"

    def create_shipment(self, order: Order, *, idempotency_key: str) -> Shipment:
        CarrierCall.objects.create(
            carrier=self.name,
            kind="create",
            idempotency_key=idempotency_key,
            order_reference=order.reference,
        )
        if idempotency_key:
            first = CarrierShipment.objects.filter(
                carrier=self.name, idempotency_key=idempotency_key
            ).first()
            if first is not None:
                return self._shipment(first)
        row = CarrierShipment(
            carrier=self.name,
            idempotency_key=idempotency_key,
            order_reference=order.reference,
            tracking_number=f"REC{secrets.token_hex(6).upper()}",
            label_url=label_url(order),
        )
        try:
            with transaction.atomic():
                row.save(force_insert=True)
        except IntegrityError:
            # A concurrent call with the same key won: it is the first shipment.
            row = CarrierShipment.objects.get(carrier=self.name, idempotency_key=idempotency_key)
        return self._shipment(row)

    def void(self, shipment: Shipment) -> None:
        CarrierCall.objects.create(
            carrier=self.name,
            kind="void",
            idempotency_key=shipment.idempotency_key,
            tracking_number=shipment.tracking_number,
        )
        CarrierShipment.objects.filter(
            carrier=self.name, tracking_number=shipment.tracking_number, voided_at=None
        ).update(voided_at=timezone.now())

    @staticmethod
    def _shipment(row) -> Shipment:
        return Shipment(
            tracking_number=row.tracking_number,
            label_url=row.label_url,
            idempotency_key=row.idempotency_key,
        )

    @classmethod
    def counts(cls) -> dict[str, int]:
        shipments = CarrierShipment.objects.filter(carrier=cls.name)
        live_per_order = (
            shipments.filter(voided_at=None)
            .values("order_reference")
            .annotate(n=Count("id"))
            .values_list("n", flat=True)
        )
        return {
            "calls": CarrierCall.objects.filter(carrier=cls.name, kind="create").count(),
            "shipments": shipments.count(),
            "voided": shipments.exclude(voided_at=None).count(),
            "duplicate_shipments": sum(n - 1 for n in live_per_order),
        }

    @classmethod
    def calls_per_order(cls) -> dict[str, int]:
        rows = (
            CarrierCall.objects.filter(carrier=cls.name, kind="create")
            .values("order_reference")
            .annotate(n=Count("id"))
        )
        return {r["order_reference"]: r["n"] for r in rows}

    @classmethod
    def reset(cls) -> None:
        CarrierCall.objects.filter(carrier=cls.name).delete()
        CarrierShipment.objects.filter(carrier=cls.name).delete()


def carrier_client() -> CarrierClient:
    path = settings.ORDER_CARRIER_CLIENT
    return import_string(path)()
