"""What every order service shares: the transition error, the row lock, the status write."""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse

from orders import signals
from orders.models import Order, OrderStatusChange

S = Order.Status
# Largest quantity one line or one receipt may carry: far beyond any real order, far below the
# 32-bit integer columns, so sums cannot overflow.
MAX_QUANTITY = 1_000_000


class InvalidTransition(Exception):
    """The order's current status does not allow the requested change."""

    def __init__(self, order: Order, *, to: str, detail: str = ""):
        self.order, self.to, self.current = order, to, order.status
        text = detail or f"Order {order.reference} is {order.status}; it cannot become {to}."
        super().__init__(text)


def order_admin_url(order: Order) -> str:
    """The absolute address of the order's admin page, for e-mails to staff."""
    return settings.SITE_URL + reverse("admin:orders_order_change", args=[order.pk])


def order_lock(order: Order) -> Order:
    return Order.objects.select_for_update().get(pk=order.pk)


def order_status_set(
    order: Order, to: str, *, actor=None, note: str = "", fields: tuple[str, ...] = ()
) -> None:
    """Save the new status (plus `fields`), log it, and announce it in the same transaction."""
    old = order.status
    order.status = to
    order.save(update_fields=["status", "updated_at", *fields])
    OrderStatusChange.objects.create(
        order=order, from_status=old, to_status=to, actor=actor, note=note[:2000]
    )
    signals.order_status_changed.send(sender=Order, order=order, old_status=old, new_status=to)
