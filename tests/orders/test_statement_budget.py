"""What one order costs the database from placement to `fulfilling`, ledger included.

The order is placed with the service and every run it causes is performed in this process
through the worker's own code path (`perform`: claim, execute, finish) in the order a cluster
would take them, the coalesced analytics run included, the shipping label (due minutes later)
not. Choosing the next run is the broker's work and is not counted: it is paid once per batch.

Pinned exactly, so a regression fails and a saving is written down here. When orders/ or the
job layer change what a placement costs, re-pin with the figure the failure prints.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from aktina.jobs.models import JobRun
from aktina.jobs.worker import perform
from analytics.jobs import GenerateOrderAnalyticsJob
from orders.models import Order
from orders.services import order_create
from tests.conftest import IS_POSTGRES

pytestmark = pytest.mark.django_db(transaction=True)

# The same figure on SQLite and on PostgreSQL but for the NOTIFYs below; the broker's message
# writes are counted where the broker is the database (the ORM broker).
# History (SQLite): 105 with two analytics runs of 16 statements and get-then-create metrics;
# 83 with one coalesced analytics run (10 statements in metrics_apply_order) and upserts;
# 94 once the ledger is the broker, with a tag row per run (`order:<id>`, 5 runs) and the
# customer's e-mail sent by its own job (SendNotificationEmailJob) instead of in the request.
# On PostgreSQL, plus one `NOTIFY aktina_jobs` per dispatching transaction (issue 17): the
# order's creation and the four job transactions that dispatch the next run.
STATEMENTS_PER_ORDER = 94 + (5 if IS_POSTGRES else 0)


def _next_due_run() -> JobRun | None:
    # Runs due within the analytics coalescing window: the label job waits far longer.
    horizon = timezone.now() + dt.timedelta(seconds=settings.ANALYTICS_COALESCE_SECONDS + 1)
    return (
        JobRun.objects.filter(status=JobRun.Status.QUEUED, available_at__lte=horizon)
        .order_by("available_at", "id")
        .first()
    )


def _counted(ctx: CaptureQueriesContext) -> int:
    # The cache is the database on the embedded default and Redis in production: leave it out,
    # so that the figure is the same whichever cache the tests run with.
    return sum(1 for q in ctx.captured_queries if "aktina_cache" not in q["sql"])


def place_and_run_to_fulfilling(*, customer, items) -> tuple[Order, int, list[str]]:
    """Place one order and perform its runs; returns the order, the statements it cost and
    the job names executed."""
    executed = []
    with CaptureQueriesContext(connection) as ctx:
        order = order_create(customer=customer, items=items)
    statements = _counted(ctx)
    while (run := _next_due_run()) is not None:
        # Its time has come (the coalescing delay passed): as the broker would deliver it. A
        # second back, because the claim compares with the database's clock (milliseconds on
        # SQLite), not this process's.
        JobRun.objects.filter(pk=run.pk).update(
            available_at=timezone.now() - dt.timedelta(seconds=1)
        )
        with CaptureQueriesContext(connection) as ctx:
            outcome = perform(run.pk, run.timeout)
        assert outcome != "skipped", run
        statements += _counted(ctx)
        executed.append(run.job_name.rsplit(".", 1)[-1])
    order.refresh_from_db()
    return order, statements, executed


def test_one_order_to_fulfilling_costs_a_pinned_number_of_statements(customer, stock):
    # A first order warms caches (content types, groups) that every later order finds warm.
    place_and_run_to_fulfilling(customer=customer, items=[{"sku": "SKU-A", "quantity": 1}])

    order, statements, executed = place_and_run_to_fulfilling(
        customer=customer, items=[{"sku": "SKU-A", "quantity": 2}]
    )

    assert order.status == Order.Status.FULFILLING
    assert executed.count(GenerateOrderAnalyticsJob.__name__) == 1, executed
    assert statements == STATEMENTS_PER_ORDER, f"{statements} statements; executed {executed}"
