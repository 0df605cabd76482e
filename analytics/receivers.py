"""Listeners to the order workflow's events; connected in AnalyticsConfig.ready().

The orders services send these signals inside their transaction, so the analytics run is a
ledger row that commits with the order change: a crash after commit cannot lose the update.
"""

from __future__ import annotations

from django.db.models.signals import post_delete
from django.dispatch import receiver

from analytics.jobs import GenerateOrderAnalyticsJob
from orders.models import Order
from orders.signals import order_placed, order_status_changed


@receiver(order_placed, dispatch_uid="analytics-order-placed")
def on_order_placed(sender, order, **kwargs) -> None:
    GenerateOrderAnalyticsJob.dispatch(order)


@receiver(order_status_changed, dispatch_uid="analytics-order-status-changed")
def on_order_status_changed(sender, order, old_status=None, new_status=None, **kwargs) -> None:
    GenerateOrderAnalyticsJob.dispatch(order)


@receiver(post_delete, sender=Order, dispatch_uid="analytics-order-deleted")
def on_order_deleted(sender, instance, **kwargs) -> None:
    # In the deleting transaction: the contribution goes exactly when the order does.
    from analytics.services import metrics_apply_order

    metrics_apply_order(order_id=instance.pk)
