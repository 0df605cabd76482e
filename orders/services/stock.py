"""Stock changes only here: units received, counts corrected with a reason (shipping is in
`fulfilment`). Nobody edits an on-hand or allocated number in a form."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F

from orders import signals
from orders.models import Product, Stock, StockAdjustment, Warehouse
from orders.services.common import MAX_QUANTITY


@transaction.atomic
def stock_receive(
    *,
    sku: str,
    warehouse: str | Warehouse,
    quantity: int,
    received_by=None,
    reference: str = "",
) -> Stock:
    """Units arrive at a warehouse, recorded (who, when, how many, the delivery's reference) as
    a receipt adjustment; orders short of the product are re-queued (`stock_received`)."""
    whole = isinstance(quantity, int) and not isinstance(quantity, bool)
    limit = min(MAX_QUANTITY, settings.STOCK_RECEIVE_MAX)
    if not whole or not 0 < quantity <= limit:
        raise ValidationError(
            {"quantity": f"Receive between 1 and {limit} units per receipt (STOCK_RECEIVE_MAX)."}
        )
    product = Product.objects.filter(sku=sku).first()
    if product is None:
        raise ValidationError({"sku": f"Unknown sku {sku!r}."})
    if not isinstance(warehouse, Warehouse):
        found = Warehouse.objects.filter(code=warehouse).first()
        if found is None:
            raise ValidationError({"warehouse": f"Unknown warehouse {warehouse!r}."})
        warehouse = found
    stock, _ = Stock.objects.get_or_create(product=product, warehouse=warehouse)
    Stock.objects.filter(pk=stock.pk).update(quantity=F("quantity") + quantity)
    StockAdjustment.objects.create(
        stock=stock,
        kind=StockAdjustment.Kind.RECEIPT,
        delta=quantity,
        reason=f"Received{': ' + reference.strip() if reference.strip() else ''}",
        actor=received_by,
    )
    stock.refresh_from_db()
    signals.stock_received.send(sender=Stock, stock=stock, quantity=quantity)
    return stock


@transaction.atomic
def stock_adjust(*, stock: Stock, quantity: int, reason: str, actor=None) -> Stock:
    """Set the units on hand after a count (damage, loss, a found pallet), with the reason.

    Never below what is allocated to orders: those units are promised; cancel the orders first.
    """
    whole = isinstance(quantity, int) and not isinstance(quantity, bool)
    if not whole or not 0 <= quantity <= MAX_QUANTITY:
        raise ValidationError({"quantity": f"Set between 0 and {MAX_QUANTITY} units."})
    if not isinstance(reason, str) or not reason.strip():
        raise ValidationError({"reason": "Say why the count changes."})
    stock = Stock.objects.select_for_update().get(pk=stock.pk)
    if quantity < stock.quantity_allocated:
        raise ValidationError(
            {
                "quantity": f"{stock.quantity_allocated} units are allocated to orders; "
                f"the count cannot go below that."
            }
        )
    delta = quantity - stock.quantity
    if delta == 0:
        return stock
    Stock.objects.filter(pk=stock.pk).update(quantity=quantity)
    StockAdjustment.objects.create(stock=stock, delta=delta, reason=reason.strip(), actor=actor)
    stock.refresh_from_db()
    if delta > 0:
        signals.stock_received.send(sender=Stock, stock=stock, quantity=delta)
    return stock
