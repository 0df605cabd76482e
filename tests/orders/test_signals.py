"""Domain signals whose receivers dispatch jobs are sent inside the transaction."""

import pytest
from django.db import transaction

from aktina.jobs.models import JobRun
from orders import signals
from orders.models import Order
from orders.services import order_approve, order_create

ANALYTICS = "analytics.jobs.GenerateOrderAnalyticsJob"


class Crash(Exception):
    pass


def _boom():
    raise Crash("the process died in the after-commit phase")


@pytest.mark.django_db(transaction=True)
def test_a_crash_in_the_first_after_commit_callback_keeps_the_follow_up_runs(customer, stock):
    with pytest.raises(Crash), transaction.atomic():
        transaction.on_commit(_boom)
        order = order_create(customer=customer, items=[{"sku": "SKU-A", "quantity": 1}])
    assert Order.objects.filter(pk=order.pk).exists()
    names = set(JobRun.objects.values_list("job_name", flat=True))
    assert {ANALYTICS, "orders.jobs.ProcessOrderApprovalJob"} <= names
    JobRun.objects.all().delete()
    with pytest.raises(Crash), transaction.atomic():
        transaction.on_commit(_boom)
        order_approve(order=order)
    names = set(JobRun.objects.values_list("job_name", flat=True))
    assert {ANALYTICS, "orders.jobs.ProcessOrderFulfillmentJob"} <= names


@pytest.mark.django_db
def test_signals_are_sent_before_commit(customer, stock, django_capture_on_commit_callbacks):
    seen = []

    def receiver(sender, order, **kwargs):
        seen.append(kwargs.get("new_status", "placed"))

    signals.order_placed.connect(receiver, weak=False)
    signals.order_status_changed.connect(receiver, weak=False)
    try:
        # After-commit callbacks are held back: whatever the receivers saw came before commit.
        with django_capture_on_commit_callbacks(execute=False):
            order = order_create(customer=customer, items=[{"sku": "SKU-A", "quantity": 1}])
            order_approve(order=order)
    finally:
        signals.order_placed.disconnect(receiver)
        signals.order_status_changed.disconnect(receiver)
    assert seen == ["placed", "approved"]
