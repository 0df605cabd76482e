"""Every write of the order workflow: one transaction and one state change per service.

Each transition locks the order row, returns early when the order is already where the
service would take it (jobs run at least once, so a re-run must be harmless), and raises
`InvalidTransition` when the current status does not allow it. Signals go out after commit;
jobs are dispatched inside the transaction (the ledger row commits or rolls back with the
order; the broker hears about it only after commit).
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from aktina.core import roles
from aktina.notifications.services import notification_send, notification_send_to_role
from orders import signals
from orders.allocation import InsufficientStock, allocate_order, allocations_release
from orders.allocation import allocations_ship as _allocations_ship
from orders.carriers import carrier_client
from orders.models import Order, OrderItem, OrderStatusChange, Product, Stock, Warehouse

__all__ = [
    "InsufficientStock",
    "InvalidTransition",
    "order_approval_remind",
    "order_approve",
    "order_cancel",
    "order_complete",
    "order_create",
    "order_fulfil",
    "order_fulfilment_retry",
    "order_mark_fulfilment_failed",
    "order_mark_inventory_shortage",
    "order_register_created",
    "order_reject",
    "order_request_approval",
    "order_ship",
    "order_shipment_create",
    "stock_receive",
]

S = Order.Status
# Largest quantity one line or one receipt may carry: far beyond any real order, far below the
# 32-bit integer columns, so sums cannot overflow.
MAX_QUANTITY = 1_000_000
# Before fulfilment nothing is allocated, so the customer may cancel on their own.
OWNER_CANCELLABLE = {
    S.PENDING,
    S.AWAITING_APPROVAL,
    S.APPROVED,
    S.INVENTORY_SHORTAGE,
    S.FULFILLMENT_FAILED,
}
STAFF_CANCELLABLE = OWNER_CANCELLABLE | {S.FULFILLING}
MAX_REMINDERS = 3


class InvalidTransition(Exception):
    """The order's current status does not allow the requested change."""

    def __init__(self, order: Order, *, to: str, detail: str = ""):
        self.order, self.to, self.current = order, to, order.status
        text = detail or f"Order {order.reference} is {order.status}; it cannot become {to}."
        super().__init__(text)


# --- helpers --------------------------------------------------------------------------------
def _jobs():
    # orders.jobs imports this module; import it lazily to keep the cycle harmless.
    from orders import jobs

    return jobs


def _lock(order: Order) -> Order:
    return Order.objects.select_for_update().get(pk=order.pk)


def _status_set(
    order: Order, to: str, *, actor=None, note: str = "", fields: tuple[str, ...] = ()
) -> None:
    """Save the new status (plus `fields`), log it, and announce it after commit."""
    old = order.status
    order.status = to
    order.save(update_fields=["status", "updated_at", *fields])
    OrderStatusChange.objects.create(
        order=order, from_status=old, to_status=to, actor=actor, note=note[:2000]
    )
    transaction.on_commit(
        lambda: signals.order_status_changed.send(
            sender=Order, order=order, old_status=old, new_status=to
        )
    )


def _is_staff(user) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_staff)


# --- creation -------------------------------------------------------------------------------
def _clean_items(items) -> list[tuple[Product, int]]:
    """Validate the requested lines; merges lines of the same sku. Raises ValidationError."""
    if not isinstance(items, list | tuple) or not items:
        raise ValidationError({"items": "An order needs at least one line."})
    if len(items) > settings.ORDER_MAX_LINES:
        raise ValidationError(
            {"items": f"An order may have at most {settings.ORDER_MAX_LINES} lines."}
        )
    wanted: OrderedDict[str, int] = OrderedDict()
    errors = []
    for i, line in enumerate(items):
        sku = line.get("sku") if isinstance(line, dict) else None
        quantity = line.get("quantity") if isinstance(line, dict) else None
        if not isinstance(sku, str) or not sku:
            errors.append(f"Line {i + 1}: sku is required.")
            continue
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
            errors.append(f"Line {i + 1}: quantity must be a whole number above 0.")
            continue
        wanted[sku] = wanted.get(sku, 0) + quantity
        if wanted[sku] > MAX_QUANTITY:
            errors.append(f"Line {i + 1}: quantity of {sku} may be at most {MAX_QUANTITY}.")
    products = {p.sku: p for p in Product.objects.filter(sku__in=list(wanted))}
    for sku in wanted:
        product = products.get(sku)
        if product is None:
            errors.append(f"Unknown sku {sku!r}.")
        elif not product.active:
            errors.append(f"Product {sku!r} is no longer sold.")
    if errors:
        raise ValidationError({"items": errors})
    return [(products[sku], quantity) for sku, quantity in wanted.items()]


def order_create(
    *,
    customer,
    items: list[dict],
    auto_approve: bool = False,
    priority: str = Order.Priority.NORMAL,
    idempotency_key: str | None = None,
    placed_by=None,
) -> Order:
    """Place an order: lines validated, prices snapshot, total computed; the approval job and
    `order_placed` follow after commit. With an `idempotency_key` already used by this customer,
    the first order is returned and nothing is created."""
    placed_by = placed_by or customer
    if idempotency_key:
        existing = Order.objects.filter(customer=customer, idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing
    if priority not in Order.Priority.values:
        raise ValidationError({"priority": f"Unknown priority {priority!r}."})
    if (
        priority == Order.Priority.URGENT
        and not _is_staff(placed_by)
        and not settings.ORDER_CUSTOMERS_MAY_SET_URGENT
    ):
        raise ValidationError({"priority": "Only staff may place urgent orders."})
    if auto_approve and not _is_staff(placed_by):
        raise ValidationError({"auto_approve": "Only staff may place pre-approved orders."})
    lines = _clean_items(items)
    try:
        with transaction.atomic():
            order = Order.objects.create(
                customer=customer,
                priority=priority,
                auto_approve=auto_approve,
                idempotency_key=idempotency_key or None,
                total_amount=sum((p.unit_price * q for p, q in lines), start=Decimal("0")),
            )
            OrderItem.objects.bulk_create(
                [
                    OrderItem(order=order, product=p, quantity=q, unit_price=p.unit_price)
                    for p, q in lines
                ]
            )
            _placed(order, actor=placed_by)
    except IntegrityError:
        if not idempotency_key:
            raise
        # A concurrent request with the same key won the race: it is the first order.
        return Order.objects.get(customer=customer, idempotency_key=idempotency_key)
    return order


@transaction.atomic
def order_register_created(*, order: Order, actor=None) -> Order:
    """For orders created outside `order_create` (the admin's add form): recompute the total
    from the lines and start the workflow, as `order_create` does."""
    order = _lock(order)
    if OrderStatusChange.objects.filter(order=order).exists():
        return order  # already announced
    total = sum((i.line_total for i in order.items.all()), start=Decimal("0"))
    if order.total_amount != total:
        order.total_amount = total
        order.save(update_fields=["total_amount", "updated_at"])
    _placed(order, actor=actor)
    return order


def _placed(order: Order, *, actor) -> None:
    OrderStatusChange.objects.create(
        order=order, from_status="", to_status=order.status, actor=actor, note="placed"
    )
    _jobs().for_order(_jobs().ProcessOrderApprovalJob(order), order).dispatch()
    transaction.on_commit(lambda: signals.order_placed.send(sender=Order, order=order))


# --- approval -------------------------------------------------------------------------------
@transaction.atomic
def order_approve(*, order: Order, approved_by=None) -> Order:
    """pending|awaiting_approval -> approved; fulfilment is dispatched in the same transaction."""
    order = _lock(order)
    if order.status == S.APPROVED:
        return order
    if order.status not in {S.PENDING, S.AWAITING_APPROVAL}:
        raise InvalidTransition(order, to=S.APPROVED)
    order.approved_by, order.approved_at = approved_by, timezone.now()
    note = "approved automatically" if approved_by is None else "approved"
    fields = ("approved_by", "approved_at")
    _status_set(order, S.APPROVED, actor=approved_by, note=note, fields=fields)
    _jobs().fulfilment_dispatch(order)
    return order


@transaction.atomic
def order_reject(*, order: Order, reason: str, rejected_by=None) -> Order:
    order = _lock(order)
    if order.status == S.REJECTED:
        return order
    if order.status not in {S.PENDING, S.AWAITING_APPROVAL}:
        raise InvalidTransition(order, to=S.REJECTED)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Say why the order is rejected."})
    order.rejection_reason = reason
    _status_set(order, S.REJECTED, actor=rejected_by, note=reason, fields=("rejection_reason",))
    notification_send(
        recipient=order.customer,
        kind="order_rejected",
        subject=f"Order {order.reference} was rejected",
        body=reason,
        order=order,
        dedupe_key=f"order-{order.pk}-rejected",
    )
    return order


@transaction.atomic
def order_request_approval(*, order: Order) -> Order:
    """pending -> awaiting_approval: managers are asked, and reminded later if it still waits."""
    order = _lock(order)
    if order.status == S.AWAITING_APPROVAL:
        return order
    if order.status != S.PENDING:
        raise InvalidTransition(order, to=S.AWAITING_APPROVAL)
    order.approval_requested_at = timezone.now()
    _status_set(order, S.AWAITING_APPROVAL, fields=("approval_requested_at",))
    notification_send_to_role(
        role=roles.MANAGER,
        kind="order_approval_requested",
        subject=f"Order {order.reference} ({order.total_amount}) needs approval",
        body=f"Approve or reject it: /admin/orders/order/{order.pk}/change/",
        order=order,
        dedupe_key=f"order-{order.pk}-approval-requested",
    )
    jobs = _jobs()
    jobs.for_order(jobs.ProcessOrderReminderJob(order, 1), order).delay(
        dt.timedelta(seconds=settings.ORDER_REMINDER_DELAY_SECONDS)
    ).dispatch()
    return order


@transaction.atomic
def order_approval_remind(*, order: Order, round_: int) -> bool:
    """Remind managers of an order still awaiting approval; returns whether it still waits."""
    order = _lock(order)
    if order.status != S.AWAITING_APPROVAL:
        return False
    notification_send_to_role(
        role=roles.MANAGER,
        kind="order_approval_reminder",
        subject=f"Reminder: order {order.reference} still awaits approval",
        body=f"Requested at {order.approval_requested_at:%Y-%m-%d %H:%M %Z}.",
        order=order,
        dedupe_key=f"order-{order.pk}-approval-reminder-{round_}",
    )
    if round_ < MAX_REMINDERS:
        jobs = _jobs()
        jobs.for_order(jobs.ProcessOrderReminderJob(order, round_ + 1), order).delay(
            dt.timedelta(seconds=settings.ORDER_REMINDER_DELAY_SECONDS)
        ).dispatch()
    return True


# --- cancellation ---------------------------------------------------------------------------
@transaction.atomic
def order_cancel(*, order: Order, cancelled_by=None, reason: str = "") -> Order:
    """Cancel before shipping: the owner before fulfilment, staff (or the system, with no user)
    also while fulfilling. Every allocation is released."""
    order = _lock(order)
    if order.status == S.CANCELLED:
        return order
    if cancelled_by is not None and not _is_staff(cancelled_by):
        if order.customer_id != cancelled_by.pk:
            raise PermissionDenied("Only the customer who placed the order or staff may cancel it.")
        if order.status not in OWNER_CANCELLABLE:
            raise InvalidTransition(
                order,
                to=S.CANCELLED,
                detail=f"Order {order.reference} is {order.status}; ask us to cancel it.",
            )
    if order.status not in STAFF_CANCELLABLE:
        raise InvalidTransition(order, to=S.CANCELLED)
    allocations_release(order=order)
    order.cancelled_at = timezone.now()
    _status_set(order, S.CANCELLED, actor=cancelled_by, note=reason, fields=("cancelled_at",))
    return order


# --- fulfilment -----------------------------------------------------------------------------
@transaction.atomic
def order_fulfil(*, order: Order) -> Order:
    """approved -> fulfilling, in one transaction: choose a warehouse, allocate every line.

    Raises InsufficientStock when no warehouse can ship the whole order (nothing is kept).
    After commit: `order_fulfilled`; the shipping label job is dispatched with its delay.
    """
    order = _lock(order)
    if order.status in {S.FULFILLING, S.SHIPPED, S.COMPLETED}:
        return order
    if order.status not in {S.APPROVED, S.INVENTORY_SHORTAGE, S.FULFILLMENT_FAILED}:
        raise InvalidTransition(order, to=S.FULFILLING)
    warehouse = allocate_order(order=order)
    order.warehouse = warehouse
    order.fulfillment_started_at = timezone.now()
    order.failure_reason = ""
    _status_set(
        order,
        S.FULFILLING,
        note=f"allocated in {warehouse.code}",
        fields=("warehouse", "fulfillment_started_at", "failure_reason"),
    )
    jobs = _jobs()
    jobs.for_order(jobs.GenerateShippingLabelJob(order), order).delay(
        dt.timedelta(seconds=settings.ORDER_LABEL_DELAY_SECONDS)
    ).dispatch()
    transaction.on_commit(lambda: signals.order_fulfilled.send(sender=Order, order=order))
    return order


@transaction.atomic
def order_mark_inventory_shortage(*, order: Order, reason: str, notice_key: str = "") -> Order:
    """approved -> inventory_shortage; inventory managers are told what is missing."""
    order = _lock(order)
    if order.status == S.INVENTORY_SHORTAGE:
        return order
    if order.status not in {S.APPROVED, S.FULFILLMENT_FAILED}:
        raise InvalidTransition(order, to=S.INVENTORY_SHORTAGE)
    order.failure_reason = reason
    _status_set(order, S.INVENTORY_SHORTAGE, note=reason, fields=("failure_reason",))
    notification_send_to_role(
        role=roles.INVENTORY_MANAGER,
        kind="inventory_shortage",
        subject=f"Order {order.reference} is waiting for stock",
        body=reason,
        order=order,
        dedupe_key=f"order-{order.pk}-shortage-{notice_key or order.updated_at.isoformat()}",
    )
    return order


@transaction.atomic
def order_mark_fulfilment_failed(*, order: Order, reason: str) -> Order:
    """approved -> fulfillment_failed after the fulfilment job's last attempt; operations told."""
    order = _lock(order)
    if order.status == S.FULFILLMENT_FAILED:
        return order
    if order.status != S.APPROVED:
        raise InvalidTransition(order, to=S.FULFILLMENT_FAILED)
    order.failure_reason = reason[:2000]
    _status_set(order, S.FULFILLMENT_FAILED, note=reason, fields=("failure_reason",))
    notification_send_to_role(
        role=roles.OPERATIONS,
        kind="fulfillment_failed",
        subject=f"Fulfilment of order {order.reference} failed",
        body=f"{reason}\n\nRetry it from the admin: /admin/orders/order/{order.pk}/change/",
        order=order,
        dedupe_key=f"order-{order.pk}-fulfilment-failed-{timezone.now().timestamp():.0f}",
    )
    return order


@transaction.atomic
def order_fulfilment_retry(*, order: Order, actor=None) -> Order:
    """inventory_shortage|fulfillment_failed -> approved, and fulfilment dispatched again."""
    order = _lock(order)
    if order.status == S.APPROVED:
        _jobs().fulfilment_dispatch(order)  # unique per order: no second active run
        return order
    if order.status not in {S.INVENTORY_SHORTAGE, S.FULFILLMENT_FAILED}:
        raise InvalidTransition(order, to=S.APPROVED)
    _status_set(order, S.APPROVED, actor=actor, note="fulfilment retried")
    _jobs().fulfilment_dispatch(order)
    return order


# --- shipping -------------------------------------------------------------------------------
def order_shipment_create(*, order: Order) -> Order:
    """Ask the carrier for a tracking number and label (no status change). Outside any
    transaction on purpose: no row lock is held across a network call. Idempotent: an order
    that already has a tracking number keeps it."""
    order.refresh_from_db()
    if order.tracking_number:
        return order
    if order.status != S.FULFILLING:
        raise InvalidTransition(order, to=S.SHIPPED)
    client = carrier_client()
    shipment = client.create_shipment(order)
    Order.objects.filter(pk=order.pk, tracking_number="").update(
        carrier=client.name,
        tracking_number=shipment.tracking_number,
        label_url=shipment.label_url,
        updated_at=timezone.now(),
    )
    order.refresh_from_db()
    return order


@transaction.atomic
def order_ship(*, order: Order) -> Order:
    """fulfilling -> shipped: the allocated units leave the warehouse; the customer is told."""
    order = _lock(order)
    if order.status in {S.SHIPPED, S.COMPLETED}:
        return order
    if order.status != S.FULFILLING or not order.tracking_number:
        raise InvalidTransition(
            order,
            to=S.SHIPPED,
            detail=f"Order {order.reference} is {order.status} "
            f"{'with' if order.tracking_number else 'without'} a shipment; it cannot ship.",
        )
    _allocations_ship(order=order)
    order.shipped_at = timezone.now()
    _status_set(
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
    transaction.on_commit(lambda: signals.order_shipped.send(sender=Order, order=order))
    return order


@transaction.atomic
def order_complete(*, order: Order, actor=None) -> Order:
    order = _lock(order)
    if order.status == S.COMPLETED:
        return order
    if order.status != S.SHIPPED:
        raise InvalidTransition(order, to=S.COMPLETED)
    order.completed_at = timezone.now()
    _status_set(order, S.COMPLETED, actor=actor, fields=("completed_at",))
    return order


# --- stock ----------------------------------------------------------------------------------
@transaction.atomic
def stock_receive(*, sku: str, warehouse: str | Warehouse, quantity: int) -> Stock:
    """Units arrive at a warehouse; orders short of this product are re-queued afterwards."""
    whole = isinstance(quantity, int) and not isinstance(quantity, bool)
    if not whole or not 0 < quantity <= MAX_QUANTITY:
        raise ValidationError({"quantity": f"Receive between 1 and {MAX_QUANTITY} units."})
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
    stock.refresh_from_db()
    jobs = _jobs()
    jobs.ProcessBulkOrdersJob.dispatch(product)
    return stock
