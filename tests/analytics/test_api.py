import datetime as dt
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.utils import timezone

from aktina.core import roles
from analytics.selectors import DASHBOARD_CACHE_KEY
from orders.models import Order
from tests.analytics.helpers import job_run, order_with_lines
from tests.factories import ProductFactory, UserFactory

pytestmark = pytest.mark.django_db
URL = "/api/analytics/dashboard/"


@pytest.fixture
def locmem_cache(settings):
    # Count database queries only, not the database cache's own.
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    cache.clear()
    yield
    cache.clear()


def seed(n: int) -> None:
    products = [ProductFactory(unit_price=Decimal("20.00")) for _ in range(3)]
    customers = [UserFactory() for _ in range(3)]
    now = timezone.now()
    for i in range(n):
        order_with_lines(
            customer=customers[i % 3],
            lines=[(products[i % 3], 1 + i % 4)],
            created_at=now - dt.timedelta(days=i % 40, hours=1),
            status=Order.Status.SHIPPED if i % 2 else Order.Status.INVENTORY_SHORTAGE,
            shipped_at=now - dt.timedelta(days=i % 40) + dt.timedelta(hours=5),
        )
    job_run(queue="analytics")
    job_run(queue="default", status="failed")


def test_anonymous_gets_401(api):
    assert api.get(URL).status_code == 401


def test_customer_gets_403(as_user, make_user):
    assert as_user(make_user(roles.CUSTOMER)).get(URL).status_code == 403


def test_dashboard_figures(as_user, make_user, locmem_cache):
    customer = UserFactory(username="big-spender")
    product = ProductFactory(sku="SKU-TOP", unit_price=Decimal("10.00"))
    now = timezone.now()
    order_with_lines(customer=customer, lines=[(product, 3)], created_at=now)
    order_with_lines(
        customer=customer,
        lines=[(product, 1)],
        created_at=now - dt.timedelta(days=40),
        status=Order.Status.SHIPPED,
        shipped_at=now - dt.timedelta(days=40) + dt.timedelta(hours=10),
    )
    order_with_lines(
        customer=customer,
        lines=[(product, 5)],
        created_at=now,
        status=Order.Status.CANCELLED,
    )

    body = as_user(make_user(roles.MANAGER)).get(URL).json()

    assert len(body["days_30"]) == 30
    assert len(body["days_90"]) == 90
    assert body["days_30"][-1] == {
        "day": timezone.localdate(now).isoformat(),
        "orders": 2,
        "orders_booked": 1,
        "revenue": "30.00",
        "revenue_shipped": "0.00",  # booked, not shipped
    }
    assert body["totals"]["last_30_days"] == {
        "orders": 2, "orders_booked": 1, "revenue": "30.00", "revenue_shipped": "0.00",
        "average_order_value": "30.00",
    }  # fmt: skip
    assert body["totals"]["last_90_days"]["revenue"] == "40.00"
    funnel = {s["status"]: s["orders"] for s in body["status_funnel"]}
    assert (funnel["pending"], funnel["shipped"], funnel["cancelled"]) == (1, 1, 1)
    assert body["lead_time"]["p50_seconds"] == 36000.0
    assert body["top_products"][0] == {
        "product_id": product.pk, "sku": "SKU-TOP", "name": product.name,
        "units": 4, "orders": 2, "revenue": "40.00",
    }  # fmt: skip
    assert body["top_customers"][0]["username"] == "big-spender"
    assert body["top_customers"][0]["orders"] == 2
    # Queue health is the job console's (GET /api/jobs/queues/), not a business metric.
    assert "jobs" not in body


def test_rebuild_after_invalidation_uses_a_fixed_number_of_queries(
    as_user, make_user, locmem_cache, django_assert_num_queries
):
    client = as_user(make_user(roles.MANAGER))
    seed(5)
    cache.delete(DASHBOARD_CACHE_KEY)
    # daily rows, funnel, lead-time sample, top products, top customers (no job-layer reads),
    # and the manager's permissions (user, groups) the first time they are checked
    with django_assert_num_queries(7):
        assert client.get(URL).status_code == 200
    with django_assert_num_queries(0):
        assert client.get(URL).status_code == 200

    seed(40)  # more history: the same number of queries
    cache.delete(DASHBOARD_CACHE_KEY)
    with django_assert_num_queries(5):
        body = client.get(URL).json()
    assert body["totals"]["last_90_days"]["orders"] == 45


def test_schema_describes_the_dashboard(as_user, superuser):
    schema = as_user(superuser).get("/api/schema/?format=json").json()
    response = schema["paths"][URL]["get"]["responses"]["200"]
    assert response["content"]["application/json"]["schema"]["$ref"].endswith("/Dashboard")
    props = schema["components"]["schemas"]["Dashboard"]["properties"]
    assert {"days_30", "days_90", "top_products", "top_customers", "status_funnel"} <= set(props)
