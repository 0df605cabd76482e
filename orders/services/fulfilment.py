"""Fulfilment and shipping: allocate in one warehouse, record shortages, ship, complete."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from aktina.core import roles
from aktina.notifications.services import notification_send, notification_send_to_role
from orders import signals
from orders.allocation import allocate_order, allocations_ship, orders_satisfiable
from orders.carriers import carrier_client, shipment_idempotency_key
from orders.models import Order, Product
from orders.selectors import orders_short_of
from orders.services.common import (
    InvalidTransition,
    S,
    order_admin_url,
    order_lock,
    order_status_set,
)


@transaction.atomic
def order_fulfil(*, order: Order) -> Order:
    """approved -> fulfilling, in one transaction: choose a warehouse, allocate every line.

    Raises InsufficientStock when no warehouse can ship the whole order (nothing is kept).
    `order_fulfilled` (the label job's trigger) is sent in the transaction.
    """
    order = order_lock(order)
    if order.status in {S.FULFILLING, S.SHIPPED, S.COMPLETED}:
        return order
    if order.status not in {S.APPROVED, S.INVENTORY_SHORTAGE, S.FULFILLMENT_FAILED}:
        raise InvalidTransition(order, to=S.FULFILLING)
    warehouse = allocate_order(order=order)
    order.warehouse = warehouse
    order.fulfillment_started_at = timezone.now()
    order.failure_reason = ""
    order_status_set(
        order,
        S.FULFILLING,
        note=f"allocated in {warehouse.code}",
        fields=("warehouse", "fulfillment_started_at", "failure_reason"),
    )
    signals.order_fulfilled.send(sender=Order, order=order)
    return order


def order_fulfilling_notify(*, order: Order) -> None:
    """Tell the customer their order is being packed (once), unless it moved on otherwise."""
    if order.status not in {S.FULFILLING, S.SHIPPED}:
        return
    warehouse = order.warehouse.name if order.warehouse_id else "our warehouse"
    notification_send(
        recipient=order.customer,
        kind="order_fulfilling",
        subject=f"Order {order.reference} is being prepared",
        body=f"Your order is being packed at {warehouse}; we will send the tracking number "
        "when it ships.",
        order=order,
        dedupe_key=f"order-{order.pk}-fulfilling",
    )


def _waiting_for_stock_notice(order: Order) -> str:
    """What the customer can expect and do: no warehouse figures, a next step."""
    skus = ", ".join(sorted({item.product.sku for item in order.items.select_related("product")}))
    return (
        f"Not every item of your order ({skus}) is in stock in one warehouse right now. "
        "We ship the whole order as soon as the stock arrives, with no action needed from you, "
        "and e-mail you the tracking number then. If you would rather not wait, you can cancel "
        "the order at no cost until it ships."
    )


@transaction.atomic
def order_mark_inventory_shortage(*, order: Order, reason: str, notice_key: str = "") -> Order:
    """approved -> inventory_shortage; the customer and inventory managers are told."""
    order = order_lock(order)
    if order.status == S.INVENTORY_SHORTAGE:
        return order
    if order.status not in {S.APPROVED, S.FULFILLMENT_FAILED}:
        raise InvalidTransition(order, to=S.INVENTORY_SHORTAGE)
    order.failure_reason = reason
    order_status_set(order, S.INVENTORY_SHORTAGE, note=reason, fields=("failure_reason",))
    episode = notice_key or order.updated_at.isoformat()
    notification_send(
        recipient=order.customer,
        kind="order_waiting_for_stock",
        subject=f"Order {order.reference} is waiting for stock",
        body=_waiting_for_stock_notice(order),
        order=order,
        dedupe_key=f"order-{order.pk}-waiting-{episode}",
    )
    notification_send_to_role(
        role=roles.INVENTORY_MANAGER,
        kind="inventory_shortage",
        subject=f"Order {order.reference} is waiting for stock",
        body=reason,
        order=order,
        dedupe_key=f"order-{order.pk}-shortage-{episode}",
    )
    return order


@transaction.atomic
def order_mark_fulfilment_failed(*, order: Order, reason: str) -> Order:
    """approved -> fulfillment_failed after the fulfilment job's last attempt; operations told."""
    order = order_lock(order)
    if order.status == S.FULFILLMENT_FAILED:
        return order
    if order.status != S.APPROVED:
        raise InvalidTransition(order, to=S.FULFILLMENT_FAILED)
    order.failure_reason = reason[:2000]
    order_status_set(order, S.FULFILLMENT_FAILED, note=reason, fields=("failure_reason",))
    notification_send_to_role(
        role=roles.OPERATIONS,
        kind="fulfillment_failed",
        subject=f"Fulfilment of order {order.reference} failed",
        body=f"{reason}\n\nRetry it from the admin: {order_admin_url(order)}",
        order=order,
        dedupe_key=f"order-{order.pk}-fulfilment-failed-{timezone.now().timestamp():.0f}",
    )
    return order


@transaction.atomic
def order_fulfilment_retry(*, order: Order, actor=None) -> Order:
    """inventory_shortage|fulfillment_failed -> approved, and fulfilment requested again."""
    order = order_lock(order)
    if order.status == S.APPROVED:
        # The fulfilment job is unique per order: no second active run.
        signals.order_fulfilment_requested.send(sender=Order, order=order)
        return order
    if order.status not in {S.INVENTORY_SHORTAGE, S.FULFILLMENT_FAILED}:
        raise InvalidTransition(order, to=S.APPROVED)
    order_status_set(order, S.APPROVED, actor=actor, note="fulfilment retried")
    signals.order_fulfilment_requested.send(sender=Order, order=order)
    return order


def orders_shortage_requeue(*, product: Product, after_id: int = 0, limit: int) -> int | None:
    """Re-queue the orders short of `product` that the stock can now satisfy, oldest first, up
    to `limit` orders after order `after_id`; returns the last order looked at when `limit`
    were (more may follow), else None. Each re-queue is its own `order_fulfilment_retry`."""
    orders = orders_short_of(product=product, after_id=after_id, limit=limit)
    for order in orders_satisfiable(orders):
        order_fulfilment_retry(order=order)
    return orders[-1].pk if len(orders) == limit else None


def order_shipment_create(*, order: Order) -> Order:
    """Ask the carrier for a tracking number and label, then record it and ship the order in
    one transaction: a worker that dies in between leaves no recorded shipment (the retry gets
    the same shipment back through the idempotency key), never a fulfilling order with a label.

    The carrier call happens outside any transaction (no row lock is held across a network
    call) and carries an idempotency key derived from the order, so a repeated call returns the
    first shipment. The answer is recorded under the row lock only if the order is still
    fulfilling without a shipment; a shipment for an order cancelled meanwhile is voided.
    """
    order.refresh_from_db()
    if order.tracking_number:
        return order
    if order.status != S.FULFILLING:
        raise InvalidTransition(order, to=S.SHIPPED)
    client = carrier_client()
    shipment = client.create_shipment(order, idempotency_key=shipment_idempotency_key(order))
    with transaction.atomic():
        order = order_lock(order)
        if order.status == S.FULFILLING and not order.tracking_number:
            order.carrier = client.name
            order.tracking_number = shipment.tracking_number
            order.label_url = shipment.label_url
            order.save(update_fields=["carrier", "tracking_number", "label_url", "updated_at"])
            return order_ship(order=order)
        ours = order.tracking_number == shipment.tracking_number
    if not ours:
        # After the lock is gone: voiding is another network call.
        client.void(shipment)
    return order


@transaction.atomic
def order_ship(*, order: Order) -> Order:
    """fulfilling -> shipped: the allocated units leave the warehouse; the customer is told."""
    order = order_lock(order)
    if order.status in {S.SHIPPED, S.COMPLETED}:
        return order
    if order.status != S.FULFILLING or not order.tracking_number:
        raise InvalidTransition(
            order,
            to=S.SHIPPED,
            detail=f"Order {order.reference} is {order.status} "
            f"{'with' if order.tracking_number else 'without'} a shipment; it cannot ship.",
        )
    allocations_ship(order=order)
    order.shipped_at = timezone.now()
    order_status_set(
        order, S.SHIPPED, note=f"{order.carrier} {order.tracking_number}", fields=("shipped_at",)
    )
    notification_send(
        recipient=order.customer,
        kind="order_shipped",
        subject=f"Order {order.reference} has shipped",
        body=f"Carrier: {order.carrier}. Tracking number: {order.tracking_number}.",
        order=order,
        dedupe_key=f"order-{order.pk}-shipped",
    )
    return order


@transaction.atomic
def order_complete(*, order: Order, actor=None) -> Order:
    order = order_lock(order)
    if order.status == S.COMPLETED:
        return order
    if order.status != S.SHIPPED:
        raise InvalidTransition(order, to=S.COMPLETED)
    order.completed_at = timezone.now()
    order_status_set(order, S.COMPLETED, actor=actor, fields=("completed_at",))
    return order
