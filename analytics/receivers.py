"""Listeners to the order workflow's events; connected in AnalyticsConfig.ready().

The orders services send these signals inside their transaction, so the analytics run is a
ledger row that commits with the order change: a crash after commit cannot lose the update.
"""

from __future__ import annotations

from django.db.models.signals import post_delete

from analytics.jobs import GenerateOrderAnalyticsJob
from analytics.services import metrics_apply_order
from orders.models import Order
from orders.signals import order_placed, order_status_changed


def on_order_placed(sender, order, **kwargs) -> None:
    GenerateOrderAnalyticsJob.dispatch(order)


def on_order_status_changed(sender, order, old_status=None, new_status=None, **kwargs) -> None:
    GenerateOrderAnalyticsJob.dispatch(order)


def on_order_deleted(sender, instance, **kwargs) -> None:
    # In the deleting transaction: the contribution goes exactly when the order does.
    metrics_apply_order(order_id=instance.pk)


def connect() -> None:
    order_placed.connect(on_order_placed, dispatch_uid="analytics-order-placed")
    order_status_changed.connect(
        on_order_status_changed, dispatch_uid="analytics-order-status-changed"
    )
    post_delete.connect(on_order_deleted, sender=Order, dispatch_uid="analytics-order-deleted")
