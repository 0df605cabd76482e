"""Cancelling an order before it ships; every allocation is released."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from orders.allocation import allocations_release
from orders.models import Order
from orders.services.common import InvalidTransition, S, order_lock, order_status_set

# Before fulfilment nothing is allocated, so the customer may cancel on their own.
OWNER_CANCELLABLE = {
    S.PENDING,
    S.AWAITING_APPROVAL,
    S.APPROVED,
    S.INVENTORY_SHORTAGE,
    S.FULFILLMENT_FAILED,
}
CANCELLABLE = OWNER_CANCELLABLE | {S.FULFILLING}


def _check_may_cancel(order: Order, user) -> None:
    if user is None:
        return  # the system (a job, a command)
    if order.customer_id != user.pk and not user.has_perm("orders.change_order"):
        raise PermissionDenied(
            "Only the customer who placed the order or order staff may cancel it."
        )
    if order.status == S.FULFILLING and not user.has_perm("orders.cancel_fulfilling_order"):
        raise InvalidTransition(
            order,
            to=S.CANCELLED,
            detail=f"Order {order.reference} is {order.status}; ask operations to cancel it.",
        )


@transaction.atomic
def order_cancel(*, order: Order, cancelled_by=None, reason: str = "") -> Order:
    """Cancel before shipping: the owner (or order staff) before fulfilment; while fulfilling,
    whoever has `orders.cancel_fulfilling_order` (or the system, with no user)."""
    order = order_lock(order)
    if order.status == S.CANCELLED:
        return order
    if order.status not in CANCELLABLE:
        raise InvalidTransition(order, to=S.CANCELLED)
    _check_may_cancel(order, cancelled_by)
    allocations_release(order=order)
    order.cancelled_at = timezone.now()
    order_status_set(order, S.CANCELLED, actor=cancelled_by, note=reason, fields=("cancelled_at",))
    return order
