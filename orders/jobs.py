"""The order workflow's jobs: thin, each calls one service that is safe to run twice.

Only `orders/receivers.py` dispatches them (the services send signals); jobs call services.
Urgent orders have every workflow job dispatched on the `urgent` queue (`for_order`), which
production serves with its own cluster, so they never wait behind a backlog of normal orders.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction

from aktina.jobs import Job, PermanentError, RateLimited, chain, run_release_unique_key
from orders.models import Order, Product
from orders.services import (
    InsufficientStock,
    InvalidTransition,
    approval_reminder_key,
    order_approval_decide,
    order_approval_remind,
    order_fulfil,
    order_fulfilling_notify,
    order_mark_fulfilment_failed,
    order_mark_inventory_shortage,
    order_ship,
    order_shipment_create,
    orders_shortage_requeue,
)

BULK_CHUNK = 100


def for_order(job: Job, order: Order) -> Job:
    """Send `job` to the urgent queue when the order is urgent."""
    if order.priority == Order.Priority.URGENT:
        job.on_queue("urgent")
    return job


def fulfilment_dispatch(order: Order):
    """The seed-style chain: fulfilment, then the customer's notification. The analytics step of
    the seed chain is not a link: analytics listens to `order_status_changed` instead, so the
    orders app never imports it (and every status change is counted, not only this one)."""
    return chain(
        for_order(ProcessOrderFulfillmentJob(order), order),
        for_order(SendOrderCompletionNotificationJob(order), order),
    ).dispatch()


class ProcessOrderApprovalJob(Job):
    """Auto-approve small or staff pre-approved orders; ask managers about the rest."""

    queue = "order-approval"
    timeout = 60
    tries = 3
    backoff = [10, 60]
    delete_when_missing_models = True

    def __init__(self, order: Order):
        self.order = order

    def unique_id(self) -> str:
        return f"order-approval-{self.order.pk}"

    def handle(self) -> None:
        order_approval_decide(order=self.order)


class ProcessOrderReminderJob(Job):
    """Remind managers of an order that still awaits approval (24 h after the request)."""

    queue = "order-approval"
    timeout = 60
    tries = 3
    backoff = [60, 300]
    delete_when_missing_models = True
    # One waiting reminder per order, found by its key when the approval is decided; the key is
    # freed when the reminder starts, so it can queue the next round.
    unique_until_processing = True

    def __init__(self, order: Order, round_: int = 1):
        self.order, self.round_ = order, round_

    def unique_id(self) -> str:
        return approval_reminder_key(self.order)

    def handle(self) -> None:
        order_approval_remind(order=self.order, round_=self.round_)


class ProcessOrderFulfillmentJob(Job):
    queue = "order-processing"
    timeout = 300
    tries = 3
    backoff = [60, 180, 600]
    retry_for = timedelta(hours=24)
    delete_when_missing_models = True
    # A shortage tells inventory managers and failed() tells operations, with the order's
    # context; the generic "job failed" alert would only repeat them.
    notify_operations_on_failure = False

    def __init__(self, order: Order):
        self.order = order

    def unique_id(self) -> str:
        return f"order-fulfillment-{self.order.pk}"

    def handle(self) -> None:
        try:
            order_fulfil(order=self.order)
        except InsufficientStock as exc:
            # One step: the shortage and the release of this run's unique key commit together,
            # so stock arriving a moment later re-queues a fresh run instead of getting this one
            # back. The run then ends as succeeded: the shortage is the order's state (the
            # customer and inventory managers are told), not a failure an operator must fix.
            with transaction.atomic():
                order_mark_inventory_shortage(
                    order=self.order,
                    reason=exc.detail,
                    notice_key=f"run-{self.run.pk}" if self.run else "",
                )
                if self.run is not None:
                    run_release_unique_key(run=self.run)
            return
        except InvalidTransition as exc:
            if exc.current in {Order.Status.CANCELLED, Order.Status.REJECTED}:
                return  # nothing left to fulfil
            raise PermanentError(str(exc)) from exc

    def failed(self, exc: BaseException) -> None:
        self.order.refresh_from_db()
        if self.order.status == Order.Status.APPROVED:
            order_mark_fulfilment_failed(order=self.order, reason=str(exc))


class SendOrderCompletionNotificationJob(Job):
    """The last link of the fulfilment chain: tell the customer their order is on its way."""

    queue = "notifications"
    timeout = 60
    tries = 5
    backoff = [10, 60, 300]
    delete_when_missing_models = True

    def __init__(self, order: Order):
        self.order = order

    def handle(self) -> None:
        order_fulfilling_notify(order=self.order)


class GenerateShippingLabelJob(Job):
    """Create the shipment with the carrier (10 calls a minute across all workers), then ship."""

    queue = "order-processing"
    timeout = 60
    tries = 5
    backoff = [30, 120, 600]
    retry_for = timedelta(hours=24)
    delete_when_missing_models = True

    def __init__(self, order: Order):
        self.order = order

    def unique_id(self) -> str:
        return f"order-label-{self.order.pk}"

    def middleware(self) -> list:
        # 10 carrier calls a minute across every worker and host (the carrier's quota).
        return [RateLimited("carrier", settings.ORDER_CARRIER_RATE_LIMIT, per=60)]

    def handle(self) -> None:
        order = self.order
        if order.status != Order.Status.FULFILLING and not order.tracking_number:
            return  # cancelled (or otherwise moved on) while the label waited
        try:
            order_shipment_create(order=order)
            order_ship(order=order)
        except InvalidTransition as exc:
            if exc.current in {Order.Status.CANCELLED, Order.Status.SHIPPED}:
                return
            raise PermanentError(str(exc)) from exc


class ProcessBulkOrdersJob(Job):
    """After stock of `product` arrived: re-queue the orders short of it that the stock can now
    satisfy, oldest first, 100 per run; the next chunk is its own run."""

    queue = "order-processing"
    timeout = 300
    tries = 3
    backoff = [30, 120]

    def __init__(self, product: Product, after_id: int = 0):
        self.product, self.after_id = product, after_id

    def tags(self) -> list[str]:
        # Operators know a product by its SKU; the automatic tag is `product:<pk>`.
        return [f"product:{self.product.sku}"]

    def handle(self) -> None:
        last = orders_shortage_requeue(
            product=self.product, after_id=self.after_id, limit=BULK_CHUNK
        )
        if last is not None:
            ProcessBulkOrdersJob.dispatch(self.product, last)
