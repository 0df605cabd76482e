"""Every error response the OpenAPI schema documents is produced, in the documented shape.

The test walks the generated schema: for each operation and each documented 4xx it makes
the request that causes it and validates the body against that response's schema (codes
and `attr` values are enums there). A documented error nobody can produce, or one produced
in another shape, fails.
"""

import copy

import pytest
from jsonschema import Draft202012Validator
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from aktina.jobs.models import JobRun
from aktina.notifications.models import Notification
from orders.models import Order
from tests.factories import (
    OrderFactory,
    ProductFactory,
    StockFactory,
    UserFactory,
    WarehouseFactory,
)
from tests.jobs.sample_jobs import NoopJob

pytestmark = pytest.mark.django_db

# Produced under real concurrency only (PostgreSQL); its shape is checked there.
ELSEWHERE = {
    ("POST", "/api/orders/", "409"): "test_idempotency.py::test_a_twin_in_flight_gets_409",
}
MISSING_ID = 999_999
REASON = '{"reason": "late"}'  # a body reject and cancel accept, so the status decides


def _nullable_to_jsonschema(node):
    """OpenAPI 3.0's `nullable: true` is JSON Schema's `null` type."""
    if isinstance(node, list):
        return [_nullable_to_jsonschema(n) for n in node]
    if not isinstance(node, dict):
        return node
    node = {k: _nullable_to_jsonschema(v) for k, v in node.items() if k != "discriminator"}
    if node.pop("nullable", False):
        return {"anyOf": [node, {"type": "null"}]}
    return node


@pytest.fixture
def schema(openapi):
    return openapi


def assert_documented_shape(schema, path, method, status, body):
    response = schema["paths"][path][method.lower()]["responses"][status]
    document = _nullable_to_jsonschema(
        {**copy.deepcopy(response["content"]["application/json"]["schema"]),
         "components": schema["components"]}
    )  # fmt: skip
    # Validated as sent: `items.1.sku` must match the schema (aktina.core.schema patterns).
    errors = sorted(Draft202012Validator(document).iter_errors(body), key=str)
    assert not errors, f"{method} {path} {status}: {body} -> {errors[0].message}"


class World:
    """Users and objects the requests need: a superuser passes every permission check."""

    def __init__(self):
        self.root = UserFactory(username="root", is_staff=True, is_superuser=True)
        # Without a role: one a customer-like user, one staff that holds no permission.
        self.nobodies = [
            UserFactory(username="nobody"),
            UserFactory(username="bare-staff", is_staff=True),
        ]
        warehouse = WarehouseFactory(code="ATH")
        self.product = ProductFactory(sku="SKU-A")
        self.stock = StockFactory(product=self.product, warehouse=warehouse, quantity=10)
        self.order = OrderFactory(customer=self.root, status=Order.Status.SHIPPED)
        self.notification = Notification.objects.create(
            recipient=self.root, kind="test", subject="s", body="b"
        )
        # A run that has succeeded: neither retried nor cancelled (409 on /api/jobs/runs/).
        self.run = NoopJob.dispatch()
        JobRun.objects.filter(pk=self.run.pk).update(status=JobRun.Status.SUCCEEDED)
        self.ids = {
            "jobs": self.run.pk,
            "orders": self.order.pk,
            "products": self.product.pk,
            "stock": self.stock.pk,
            "warehouses": warehouse.pk,
            "notifications": self.notification.pk,
        }

    def url(self, path: str, *, missing: bool = False) -> str:
        resource = path.split("/")[2]
        return path.replace("{id}", str(MISSING_ID if missing else self.ids.get(resource, 1)))

    def client(self, user=None) -> APIClient:
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        return client


def _call(client, method, url, **kwargs):
    return client.generic(method, url, **kwargs)


def produce(world, schema, path, method, status, op, monkeypatch):
    """Make the request that answers `status` on this operation; returns the response."""
    root = world.client(world.root)
    url = world.url(path)
    takes_body = "requestBody" in op
    json = {"content_type": "application/json"}
    if status == "400":
        if takes_body:
            return _call(root, method, url, data="{not json", **json)
        for param in op.get("parameters", []):
            if param["in"] == "query" and param["name"] not in ("page", "ordering"):
                response = _call(root, method, f"{url}?{param['name']}=%00not-valid")
                if response.status_code == 400:
                    return response
        return _call(root, method, f"{url}?page=not-a-number")
    if status == "401":  # (anonymous callers get it too: the authorization matrix checks that)
        return _call(world.client(), method, url, HTTP_AUTHORIZATION="Token not-a-token")
    if status == "403":
        for user in world.nobodies:
            response = _call(world.client(user), method, url, data=REASON, **json)
            if response.status_code == 403:
                break
        return response
    if status == "404":
        if "{id}" in path:
            return _call(root, method, world.url(path, missing=True), data=REASON, **json)
        return _call(root, method, f"{url}?format=no-such-format")
    if status == "405":
        allowed = set(schema["paths"][path])
        other = next(m for m in ("put", "patch", "delete", "post", "get") if m not in allowed)
        return _call(root, other.upper(), url)
    if status == "406":
        return _call(root, method, url, HTTP_ACCEPT="application/x-no-such-type")
    if status == "415":
        return _call(root, method, url, data="x", content_type="text/plain")
    # An order that has shipped can be neither approved, rejected nor cancelled; a run that has
    # succeeded neither retried nor cancelled.
    if status == "409":
        return _call(root, method, url, data=REASON, **json)
    if status == "422":
        first = {"items": [{"sku": "SKU-A", "quantity": 1}]}
        second = {"items": [{"sku": "SKU-A", "quantity": 2}]}
        _call(
            root,
            method,
            url,
            data=__import__("json").dumps(first),
            HTTP_IDEMPOTENCY_KEY="k",
            **json,
        )
        return _call(
            root,
            method,
            url,
            data=__import__("json").dumps(second),
            HTTP_IDEMPOTENCY_KEY="k",
            **json,
        )
    if status == "429":
        monkeypatch.setattr(
            SimpleRateThrottle, "THROTTLE_RATES", {"auth": "1/min", "order_create": "1/min"}
        )
        client = world.client(None if "auth" in path else world.root)
        _call(client, method, url, data="{}", **json)
        return _call(client, method, url, data="{}", **json)
    raise AssertionError(f"no way to produce {status} on {method} {path}: add one")


def test_every_documented_error_response_is_produced_in_its_documented_shape(schema, monkeypatch):
    world = World()
    checked = []
    for path, operations in schema["paths"].items():
        for method, op in operations.items():
            for status in sorted(s for s in op["responses"] if s.startswith("4")):
                if (method.upper(), path, status) in ELSEWHERE:
                    continue
                response = produce(world, schema, path, method.upper(), status, op, monkeypatch)
                monkeypatch.undo()
                assert str(response.status_code) == status, (
                    f"{method.upper()} {path}: wanted {status}, got {response.status_code} "
                    f"{response.content[:300]!r}"
                )
                assert response["Content-Type"].startswith("application/json")
                assert_documented_shape(schema, path, method.upper(), status, response.json())
                checked.append((method.upper(), path, status))
    assert len(checked) > 100


def test_validation_errors_of_the_order_body_match_the_schema(schema):
    world = World()
    client = world.client(world.root)
    bad = {"items": [{"sku": "SKU-A", "quantity": 1}, {"sku": "NOPE", "quantity": 0}],
           "priority": "asap"}  # fmt: skip
    response = client.post("/api/orders/", bad, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "validation_error"
    assert {e["attr"] for e in body["errors"]} == {"items.1.quantity", "priority"}
    assert_documented_shape(schema, "/api/orders/", "POST", "400", body)


def test_a_service_validation_error_has_the_same_shape(schema, settings):
    """The service (not the serializer) rejects two lines of one sku adding up past the
    maximum: once `{"items": ["Line 2: ..."]}`, now the one shape, `attr` naming the line."""
    world = World()
    client = world.client(world.root)
    half = settings.ORDER_MAX_LINE_QUANTITY // 2 + 1
    lines = {"items": [{"sku": "SKU-A", "quantity": half}, {"sku": "SKU-A", "quantity": half}]}
    response = client.post("/api/orders/", lines, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "validation_error"
    assert [e["attr"] for e in body["errors"]] == ["items.1.quantity"]
    assert "at most" in body["errors"][0]["detail"]


@pytest.mark.parametrize(
    "payload",
    [{}, {"items": None}, {"items": "x"}, {"items": []}, {"items": [None]}, {"items": [{}]}],
)
def test_every_malformed_items_error_is_documented(schema, payload):
    # `required`/`null` come on `items` itself, the list's own errors on items.non_field_errors.
    world = World()
    response = world.client(world.root).post("/api/orders/", payload, format="json")
    assert response.status_code == 400
    assert_documented_shape(schema, "/api/orders/", "POST", "400", response.json())
