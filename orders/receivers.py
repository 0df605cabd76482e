"""The order workflow's own follow-up work: each domain signal dispatches its job.

Connected in OrdersConfig.ready(). The services send these signals inside their transaction, so
every run written here commits or rolls back with the order change that caused it. The only
module of `orders` that imports `orders.jobs` (jobs import services; services send signals).
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings

from orders import jobs, signals
from orders.models import Order
from orders.services import order_approval_reminders_cancel


def on_order_placed(sender, order, **kwargs) -> None:
    jobs.for_order(jobs.ProcessOrderApprovalJob(order), order).dispatch()


def on_fulfilment_requested(sender, order, **kwargs) -> None:
    jobs.fulfilment_dispatch(order)


def on_approval_reminder_due(sender, order, round_, **kwargs) -> None:
    delay = dt.timedelta(seconds=settings.ORDER_REMINDER_DELAY_SECONDS)
    jobs.for_order(jobs.ProcessOrderReminderJob(order, round_), order).delay(delay).dispatch()


def on_status_changed(sender, order, old_status=None, new_status=None, **kwargs) -> None:
    if old_status == Order.Status.AWAITING_APPROVAL:
        # Decided (approved, rejected, cancelled): the waiting reminder has nothing to remind.
        order_approval_reminders_cancel(order=order)


def on_order_fulfilled(sender, order, **kwargs) -> None:
    delay = dt.timedelta(seconds=settings.ORDER_LABEL_DELAY_SECONDS)
    jobs.for_order(jobs.GenerateShippingLabelJob(order), order).delay(delay).dispatch()


def on_stock_received(sender, stock, quantity, **kwargs) -> None:
    jobs.ProcessBulkOrdersJob.dispatch(stock.product)


def connect() -> None:
    signals.order_placed.connect(on_order_placed, dispatch_uid="orders-placed")
    signals.order_fulfilment_requested.connect(
        on_fulfilment_requested, dispatch_uid="orders-fulfilment-requested"
    )
    signals.order_approval_reminder_due.connect(
        on_approval_reminder_due, dispatch_uid="orders-approval-reminder-due"
    )
    signals.order_status_changed.connect(on_status_changed, dispatch_uid="orders-status-changed")
    signals.order_fulfilled.connect(on_order_fulfilled, dispatch_uid="orders-fulfilled")
    signals.stock_received.connect(on_stock_received, dispatch_uid="orders-stock-received")
