import datetime as dt
from decimal import Decimal

from django.utils import timezone

from aktina.jobs.models import JobRun
from analytics.services import metrics_apply_order
from orders.models import Order
from tests.factories import OrderFactory, OrderItemFactory


def order_with_lines(*, customer, lines, created_at=None, status=Order.Status.PENDING, **fields):
    """An order with (product, quantity) lines, its total set, and its metrics applied."""
    order = OrderFactory(customer=customer, created_at=created_at or timezone.now())
    total = Decimal("0")
    for product, quantity in lines:
        total += OrderItemFactory(order=order, product=product, quantity=quantity).line_total
    Order.objects.filter(pk=order.pk).update(total_amount=total, status=status, **fields)
    metrics_apply_order(order_id=order.pk)
    order.refresh_from_db()
    return order


def job_run(*, queue="analytics", status=JobRun.Status.SUCCEEDED, wait=0.5, run=0.2, ago=60):
    """A ledger row that became available `ago` seconds ago and waited/ran as given."""
    now = timezone.now()
    available = now - dt.timedelta(seconds=ago)
    started = available + dt.timedelta(seconds=wait) if status != JobRun.Status.QUEUED else None
    finished = (
        started + dt.timedelta(seconds=run)
        if status in (JobRun.Status.SUCCEEDED, JobRun.Status.FAILED)
        else None
    )
    return JobRun.objects.create(
        job_name="tests.jobs.sample_jobs.Noop",
        queue=queue,
        status=status,
        created_at=available,
        available_at=available,
        started_at=started,
        finished_at=finished,
        attempts=1 if started else 0,
        last_error="boom" if status == JobRun.Status.FAILED else "",
    )
