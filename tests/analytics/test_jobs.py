import pytest

from aktina.jobs.models import JobRun
from aktina.jobs.testing import work_off
from analytics.jobs import GenerateOrderAnalyticsJob
from analytics.models import DailyMetric, OrderContribution
from orders.models import Order
from orders.signals import order_placed, order_status_changed
from tests.factories import OrderItemFactory

pytestmark = pytest.mark.django_db


def test_order_events_dispatch_the_analytics_job_which_updates_metrics(
    django_capture_on_commit_callbacks,
):
    item = OrderItemFactory(quantity=3)
    order = item.order
    with django_capture_on_commit_callbacks(execute=True):
        order_placed.send(sender=Order, order=order)
    run = JobRun.objects.get(job_name=GenerateOrderAnalyticsJob.job_name)
    assert (run.queue, run.timeout, run.tries) == ("analytics", 120, 3)

    with django_capture_on_commit_callbacks(execute=True):
        work_off(queue="analytics", include_delayed=True)
    assert OrderContribution.objects.get(order_id=order.pk).status == Order.Status.PENDING

    Order.objects.filter(pk=order.pk).update(status=Order.Status.CANCELLED)
    with django_capture_on_commit_callbacks(execute=True):
        order_status_changed.send(
            sender=Order, order=order, old_status="pending", new_status="cancelled"
        )
        work_off(queue="analytics", include_delayed=True)
    assert DailyMetric.objects.get().orders_booked == 0
    assert JobRun.objects.filter(status=JobRun.Status.SUCCEEDED).count() == 2


def test_a_burst_of_events_collapses_into_one_waiting_run(django_capture_on_commit_callbacks):
    order = OrderItemFactory().order
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(3):
            order_status_changed.send(sender=Order, order=order, old_status="a", new_status="b")
    assert JobRun.objects.filter(status=JobRun.Status.QUEUED).count() == 1


def test_run_for_a_deleted_order_is_cancelled_and_its_contribution_removed(
    django_capture_on_commit_callbacks,
):
    order = OrderItemFactory().order
    with django_capture_on_commit_callbacks(execute=True):
        GenerateOrderAnalyticsJob.dispatch(order)
        work_off(queue="analytics", include_delayed=True)
        GenerateOrderAnalyticsJob.dispatch(order)
        order.delete()
        work_off(queue="analytics", include_delayed=True)
    assert not OrderContribution.objects.exists()
    assert not DailyMetric.objects.exists()
    assert JobRun.objects.filter(status=JobRun.Status.CANCELLED).count() == 1


def test_the_run_waits_the_coalescing_delay_so_a_burst_finds_it_waiting(
    django_capture_on_commit_callbacks, settings
):
    settings.ANALYTICS_COALESCE_SECONDS = 2.0
    order = OrderItemFactory().order
    with django_capture_on_commit_callbacks(execute=True):
        order_placed.send(sender=Order, order=order)
        assert work_off(queue="analytics") == 0  # not due yet: later changes join this run
        order_status_changed.send(sender=Order, order=order, old_status="a", new_status="b")
    # order_placed also dispatches the approval run: only the analytics run counts here.
    run = JobRun.objects.get(job_name=GenerateOrderAnalyticsJob.job_name)
    assert 1.5 <= (run.available_at - run.created_at).total_seconds() <= 2.0
