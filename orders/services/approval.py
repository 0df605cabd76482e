"""Approval: automatic for small or pre-approved orders, by a manager for the rest."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from aktina.core import roles
from aktina.jobs import RunNotChangeable, run_cancel
from aktina.jobs.models import JobRun
from aktina.notifications.services import notification_send, notification_send_to_role
from orders import signals
from orders.models import Order
from orders.services.common import (
    InvalidTransition,
    S,
    order_admin_url,
    order_lock,
    order_status_set,
)

MAX_REMINDERS = 3


def approval_reminder_key(order: Order) -> str:
    """The unique key of the order's waiting reminder run (`ProcessOrderReminderJob`)."""
    return f"order-approval-reminder-{order.pk}"


def order_approval_reminders_cancel(*, order: Order) -> int:
    """Cancel the order's waiting reminder (the approval was decided); returns how many."""
    cancelled = 0
    waiting = JobRun.objects.filter(
        unique_key=approval_reminder_key(order), unique_active=True, status=JobRun.Status.QUEUED
    )
    for run in waiting:
        try:
            run_cancel(run=run)
        except RunNotChangeable:
            continue  # it started meanwhile: it finds the order decided and does nothing
        cancelled += 1
    return cancelled


@transaction.atomic
def order_approve(*, order: Order, approved_by=None) -> Order:
    """pending|awaiting_approval -> approved; fulfilment is requested in the same transaction."""
    order = order_lock(order)
    if order.status == S.APPROVED:
        return order
    if order.status not in {S.PENDING, S.AWAITING_APPROVAL}:
        raise InvalidTransition(order, to=S.APPROVED)
    order.approved_by, order.approved_at = approved_by, timezone.now()
    note = "approved automatically" if approved_by is None else "approved"
    fields = ("approved_by", "approved_at")
    order_status_set(order, S.APPROVED, actor=approved_by, note=note, fields=fields)
    signals.order_fulfilment_requested.send(sender=Order, order=order)
    return order


@transaction.atomic
def order_reject(*, order: Order, reason: str, rejected_by=None) -> Order:
    """pending|awaiting_approval -> rejected with a reason the customer reads. Repeating the same
    rejection is harmless; a rejected order cannot be rejected again for another reason."""
    if not isinstance(reason, str) or not reason.strip():
        raise ValidationError({"reason": "Say why the order is rejected."})
    reason = reason.strip()
    order = order_lock(order)
    if order.status == S.REJECTED:
        if order.rejection_reason == reason:
            return order
        raise InvalidTransition(
            order,
            to=S.REJECTED,
            detail=f"Order {order.reference} was already rejected: {order.rejection_reason}",
        )
    if order.status not in {S.PENDING, S.AWAITING_APPROVAL}:
        raise InvalidTransition(order, to=S.REJECTED)
    order.rejection_reason = reason
    order_status_set(
        order, S.REJECTED, actor=rejected_by, note=reason, fields=("rejection_reason",)
    )
    notification_send(
        recipient=order.customer,
        kind="order_rejected",
        subject=f"Order {order.reference} was rejected",
        body=reason,
        order=order,
        dedupe_key=f"order-{order.pk}-rejected",
    )
    return order


def order_approval_decide(*, order: Order) -> Order:
    """A new order (as just fetched): approved automatically when staff pre-approved it or its
    total is under ORDER_AUTO_APPROVE_LIMIT, else managers are asked. Decided orders are left
    alone (a re-run, a manager, or a cancellation got there first); the service called locks
    the row and checks the status again."""
    if order.status != S.PENDING:
        return order
    if order.auto_approve or order.total_amount < settings.ORDER_AUTO_APPROVE_LIMIT:
        return order_approve(order=order, approved_by=None)
    return order_request_approval(order=order)


@transaction.atomic
def order_request_approval(*, order: Order) -> Order:
    """pending -> awaiting_approval: managers are asked, and reminded later if it still waits."""
    order = order_lock(order)
    if order.status == S.AWAITING_APPROVAL:
        return order
    if order.status != S.PENDING:
        raise InvalidTransition(order, to=S.AWAITING_APPROVAL)
    order.approval_requested_at = timezone.now()
    limit = settings.ORDER_AUTO_APPROVE_LIMIT
    why = (
        f"total {order.total_amount} is not under the automatic approval limit of {limit}"
        if order.total_amount >= limit
        else "approval requested"
    )
    order_status_set(
        order, S.AWAITING_APPROVAL, note=f"{why}; managers asked", fields=("approval_requested_at",)
    )
    notification_send_to_role(
        role=roles.MANAGER,
        kind="order_approval_requested",
        subject=f"Order {order.reference} ({order.total_amount}) needs approval",
        body=f"Approve or reject it: {order_admin_url(order)}",
        order=order,
        dedupe_key=f"order-{order.pk}-approval-requested",
    )
    signals.order_approval_reminder_due.send(sender=Order, order=order, round_=1)
    return order


@transaction.atomic
def order_approval_remind(*, order: Order, round_: int) -> bool:
    """Remind managers of an order still awaiting approval; returns whether it still waits."""
    order = order_lock(order)
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
        signals.order_approval_reminder_due.send(sender=Order, order=order, round_=round_ + 1)
    return True
