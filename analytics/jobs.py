from __future__ import annotations

from django.conf import settings

from aktina.jobs import Job
from analytics.services import metrics_apply_order


class GenerateOrderAnalyticsJob(Job):
    """Bring the metrics up to date with one order (idempotent, so retries are harmless)."""

    queue = "analytics"
    timeout = 120
    tries = 3
    backoff = [5, 30]
    # A deleted order's contribution is removed by the post_delete receiver.
    delete_when_missing_models = True
    # A burst of status changes collapses into one waiting run, which reads the latest state;
    # the key is freed when the run starts, so a change during the run queues another. The
    # run waits ANALYTICS_COALESCE_SECONDS so that the burst has happened by then: placement,
    # approval and fulfilment of one order then cost one run, not two or three.
    unique_until_processing = True

    def __init__(self, order):
        self.order = order
        self.delay(settings.ANALYTICS_COALESCE_SECONDS)  # a caller's own .delay() replaces it

    def unique_id(self) -> str:
        return f"order-analytics-{self.order.pk}"

    def handle(self) -> None:
        metrics_apply_order(order_id=self.order.pk)
