"""Shared cast for the security tests: one user per role, real objects owned by `customer`."""

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from aktina.core import roles
from aktina.jobs.models import JobProcess, JobRun
from aktina.notifications.services import notification_send
from orders.models import Order, Product, Stock, Warehouse
from tests.factories import OrderFactory, OrderItemFactory, ProductFactory, StockFactory

# The columns of the authorisation matrix, in its order.
ROLES = (
    "anonymous",
    "customer",
    "other_customer",
    "manager",
    "inventory_manager",
    "operations",
    "superuser",
    "staff_no_perms",
    "no_role",
)
PASSWORD = "pw-for-tests-1"


@pytest.fixture
def people(make_user, superuser) -> dict:
    """Role name -> user (None for anonymous)."""
    return {
        "anonymous": None,
        "customer": make_user(roles.CUSTOMER, username="alice"),
        "other_customer": make_user(roles.CUSTOMER, username="bob"),
        "manager": make_user(roles.MANAGER, username="mona"),
        "inventory_manager": make_user(roles.INVENTORY_MANAGER, username="ivan"),
        "operations": make_user(roles.OPERATIONS, username="otto"),
        "superuser": superuser,
        # is_staff and nothing else: opens the admin's login page, grants no data.
        "staff_no_perms": make_user(username="stan", is_staff=True),
        # Signed in, in no role: may not even place an order.
        "no_role": make_user(username="nora"),
    }


@pytest.fixture
def client_as(people):
    """`client_as("manager")`: an API client authenticated the way real clients are (a token)."""

    def make(role: str) -> APIClient:
        client = APIClient()
        user = people[role]
        if user is not None:
            token, _ = Token.objects.get_or_create(user=user)
            client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    return make


@dataclass
class World:
    product: Product
    warehouse: Warehouse
    stock: Stock
    order: Order
    notification: object
    failed_run: object
    queued_run: object
    running_run: object


@pytest.fixture
def world(people) -> World:
    """An order of `customer` that awaits approval (with a label), and her notification."""
    stock = StockFactory(product=ProductFactory(sku="SKU-SEC-1", unit_price=Decimal("5.00")))
    order = OrderFactory(
        customer=people["customer"],
        status=Order.Status.AWAITING_APPROVAL,
        total_amount=Decimal("5.00"),
        tracking_number="TRK-SEC-1",
    )
    OrderItemFactory(order=order, product=stock.product, quantity=1)
    notification = notification_send(
        recipient=people["customer"], kind="order_placed", subject="Your order", order=order
    )
    now = timezone.now()
    failed_run = JobRun.objects.create(
        job_name="tests.security.failed", queue="default", status=JobRun.Status.FAILED,
        created_at=now, available_at=now, finished_at=now,
    )  # fmt: skip
    queued_run = JobRun.objects.create(
        job_name="tests.security.queued", queue="default", status=JobRun.Status.QUEUED,
        created_at=now, available_at=now + dt.timedelta(hours=1),
    )  # fmt: skip
    cluster = JobProcess.objects.create(
        kind="cluster", cluster="sec", host="h", pid=1, boot="sec", queues=["default"],
        started_at=now, last_seen=now,
    )  # fmt: skip
    running_run = JobRun.objects.create(
        job_name="tests.security.running", queue="default", status=JobRun.Status.RUNNING,
        created_at=now, available_at=now, started_at=now, holder=cluster,
    )  # fmt: skip
    return World(
        stock.product, stock.warehouse, stock, order, notification, failed_run, queued_run,
        running_run,
    )  # fmt: skip
