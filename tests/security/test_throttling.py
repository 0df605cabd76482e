"""Password guessing and order floods get a 429 past the configured rate (THROTTLE_AUTH,
THROTTLE_ORDER_CREATE), counted in the shared cache, per client (IP) or per user."""

import pytest
from rest_framework.test import APIClient
from rest_framework.throttling import ScopedRateThrottle

from tests.security.conftest import PASSWORD

pytestmark = pytest.mark.django_db
TOKEN = "/api/auth/token/"
ORDERS = "/api/orders/"


@pytest.fixture
def rates(settings, monkeypatch):
    """Set throttle rates for one test. DRF copies DEFAULT_THROTTLE_RATES onto the throttle
    class when it is imported, so the class attribute is what a test must change."""

    def set_rates(**rates):
        merged = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], **rates}
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": merged}
        monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", merged)

    return set_rates


def test_the_default_rate_throttles_the_token_endpoint(people):
    """THROTTLE_AUTH's default (20/min) with nothing patched: request 21 is refused, even with
    the right password (successes count; failures hit the lockout first)."""
    api = APIClient()
    right = {"username": "alice", "password": PASSWORD}
    codes = [api.post(TOKEN, right).status_code for _ in range(21)]
    assert codes == [200] * 20 + [429]


def test_token_endpoint_returns_429_past_the_rate(rates, people):
    rates(auth="3/min")
    api = APIClient()
    wrong = {"username": "alice", "password": "guess"}
    assert [api.post(TOKEN, wrong).status_code for _ in range(3)] == [400, 400, 400]
    response = api.post(TOKEN, {"username": "alice", "password": PASSWORD})
    assert response.status_code == 429  # even the right password, once the budget is spent
    assert "Retry-After" in response.headers


def test_order_creation_returns_429_past_the_rate_and_places_nothing_more(rates, client_as, world):
    rates(order_create="2/min")
    api = client_as("customer")
    body = {"items": [{"sku": world.product.sku, "quantity": 1}]}
    codes = [api.post(ORDERS, body, format="json").status_code for _ in range(3)]
    assert codes == [201, 201, 429]
    assert world.order.customer.orders.count() == 3  # the fixture's order and two new ones


def test_order_throttle_is_per_user_and_leaves_reads_alone(rates, client_as, world):
    rates(order_create="1/min")
    alice, bob = client_as("customer"), client_as("other_customer")
    body = {"items": [{"sku": world.product.sku, "quantity": 1}]}
    assert alice.post(ORDERS, body, format="json").status_code == 201
    assert alice.post(ORDERS, body, format="json").status_code == 429
    assert bob.post(ORDERS, body, format="json").status_code == 201
    assert alice.get(ORDERS).status_code == 200
