"""Who may do what: every endpoint x every role -> the expected status, from one table.

The table is checked against the app itself: every operation of the OpenAPI schema and every
URL the resolver knows (outside the Django admin, which has its own permission system and
tests) must have a row, so a new endpoint without a decision about who may call it fails here.

Each cell runs on fresh objects (an order of `customer` awaiting approval, her notification),
authenticated the way real clients are: API calls with a token, pages with a session.
"""

import re

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from rest_framework.authtoken.models import Token

from aktina.jobs.console.models import MonitoredTag
from aktina.jobs.models import JobRun, QueuePause
from aktina.jobs.pausing import queue_pause
from aktina.notifications.models import Notification
from orders.models import Order, Stock, StockAdjustment
from tests.security.conftest import ROLES

pytestmark = pytest.mark.django_db

# Columns: anonymous, customer (owns the order and the notification), other customer,
# manager, inventory manager, operations, superuser, staff without permissions, no role.
# fmt: off
API = {
    ("GET",  "/api/health/"):                   (200, 200, 200, 200, 200, 200, 200, 200, 200),
    ("POST", "/api/auth/token/"):               (200, 200, 200, 200, 200, 200, 200, 200, 200),
    # Any token holder may replace their own token.
    ("POST", "/api/auth/token/rotate/"):        (401, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET",  "/api/schema/"):                   (200, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET",  "/api/docs/"):                     (200, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET",  "/api/redoc/"):                    (200, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET",  "/api/products/"):                 (401, 200, 200, 200, 200, 200, 200, 403, 403),
    ("GET",  "/api/products/{id}/"):            (401, 200, 200, 200, 200, 200, 200, 403, 403),
    ("GET",  "/api/orders/"):                   (401, 200, 200, 200, 200, 200, 200, 403, 403),
    # orders.add_order: customers, managers, operations (inventory managers do not sell).
    ("POST", "/api/orders/"):                   (401, 201, 201, 201, 403, 201, 201, 403, 403),
    ("GET",  "/api/orders/{id}/"):              (401, 200, 404, 200, 200, 200, 200, 403, 403),
    ("POST", "/api/orders/{id}/approve/"):      (401, 403, 403, 200, 403, 403, 200, 403, 403),
    ("POST", "/api/orders/{id}/reject/"):       (401, 403, 403, 200, 403, 403, 200, 403, 403),
    # Staff other than the owner need orders.change_order, which inventory managers lack.
    ("POST", "/api/orders/{id}/cancel/"):       (401, 200, 404, 200, 403, 200, 200, 403, 403),
    # The label with token auth: its owner and staff; someone else's is a 404.
    ("GET",  "/api/orders/{id}/label/"):        (401, 200, 404, 200, 200, 200, 200, 403, 403),
    ("GET",  "/api/warehouses/"):               (401, 403, 403, 200, 200, 200, 200, 403, 403),
    ("GET",  "/api/warehouses/{id}/"):          (401, 403, 403, 200, 200, 200, 200, 403, 403),
    ("GET",  "/api/stock/"):                    (401, 403, 403, 200, 200, 200, 200, 403, 403),
    ("GET",  "/api/stock/{id}/"):               (401, 403, 403, 200, 200, 200, 200, 403, 403),
    ("POST", "/api/stock/receive/"):            (401, 403, 403, 403, 200, 403, 200, 403, 403),
    ("GET",  "/api/notifications/"):            (401, 200, 200, 200, 200, 200, 200, 403, 403),
    # An inbox is personal: someone else's notification is a 403, whoever asks.
    ("GET",  "/api/notifications/{id}/"):       (401, 200, 403, 403, 403, 403, 403, 403, 403),
    ("POST", "/api/notifications/{id}/read/"):  (401, 200, 403, 403, 403, 403, 403, 403, 403),
    ("GET",  "/api/analytics/dashboard/"):      (401, 403, 403, 200, 200, 200, 200, 403, 403),
    # Business data: staff roles only (customers see no business-wide figures).
    ("GET",  "/api/ml/segments/"):              (401, 403, 403, 200, 200, 200, 200, 403, 403),
    ("GET",  "/api/ml/forecasts/"):             (401, 403, 403, 200, 200, 200, 200, 403, 403),
    # Refresh runs (errors, timings) are operations' data.
    ("GET",  "/api/ml/runs/"):                  (401, 403, 403, 403, 403, 200, 200, 403, 403),
    # The operations API: jobs.view_jobrun to read, jobs.operate_jobs to act (operations).
    ("GET",  "/api/jobs/runs/"):                (401, 403, 403, 403, 403, 200, 200, 403, 403),
    ("GET",  "/api/jobs/runs/{id}/"):           (401, 403, 403, 403, 403, 200, 200, 403, 403),
    ("POST", "/api/jobs/runs/{id}/retry/"):     (401, 403, 403, 403, 403, 201, 201, 403, 403),
    ("POST", "/api/jobs/runs/{id}/cancel/"): (401, 403, 403, 403, 403, 200, 200, 403, 403),
    ("POST", "/api/jobs/runs/{id}/terminate/"): (401, 403, 403, 403, 403, 200, 200, 403, 403),
    ("GET",  "/api/jobs/clusters/"):            (401, 403, 403, 403, 403, 200, 200, 403, 403),
    ("GET",  "/api/jobs/queues/"):              (401, 403, 403, 403, 403, 200, 200, 403, 403),
    ("POST", "/api/jobs/queues/{queue}/pause/"): (401, 403, 403, 403, 403, 200, 200, 403, 403),
    ("POST", "/api/jobs/queues/{queue}/resume/"): (401, 403, 403, 403, 403, 200, 200, 403, 403),
}
# Privileged request fields: (endpoint, field, value) x role, with customers' urgent orders off
# (ORDER_CUSTOMERS_MAY_SET_URGENT=False). Every entry of orders' PRIVILEGED_FIELDS needs a row.
FIELDS = {
    ("POST", "/api/orders/", "auto_approve", True):   (401, 403, 403, 201, 403, 403, 201, 403, 403),
    ("POST", "/api/orders/", "priority", "urgent"):   (401, 403, 403, 201, 403, 201, 201, 403, 403),
}
# Server-rendered pages (session login; anonymous is sent to the login page, a signed-in user
# without the page's permission gets a 403).
PAGES = {
    # The site's root only redirects to the dashboard, which then checks who may see it.
    ("GET",  "/"):                              (302, 302, 302, 302, 302, 302, 302, 302, 302),
    ("GET",  "/orders/{reference}/label/"):     (302, 200, 404, 200, 200, 200, 200, 404, 404),
    ("GET",  "/dashboard/"):                    (302, 403, 403, 200, 200, 200, 200, 403, 403),
    ("GET",  "/dashboard/queues/"):             (302, 403, 403, 403, 403, 200, 200, 403, 403),
    ("POST", "/dashboard/queues/{queue}/retry/"): (302, 302, 302, 403, 403, 302, 302, 403, 302),
    ("POST", "/dashboard/queues/{queue}/pause/"): (302, 302, 302, 403, 403, 302, 302, 403, 302),
    ("POST", "/dashboard/queues/{queue}/resume/"): (302, 302, 302, 403, 403, 302, 302, 403, 302),
    ("GET",  "/dashboard/tags/"):               (302, 403, 403, 403, 403, 200, 200, 403, 403),
    ("POST", "/dashboard/tags/add/"):           (302, 302, 302, 403, 403, 302, 302, 403, 302),
    ("POST", "/dashboard/tags/remove/"):        (302, 302, 302, 403, 403, 302, 302, 403, 302),
    # Prometheus: jobs.view_jobrun (or the METRICS_TOKEN bearer, tests/jobs/test_metrics.py).
    ("GET",  "/metrics"):                       (401, 403, 403, 403, 403, 200, 200, 403, 403),
}
# fmt: on
BODIES = {
    ("POST", "/api/auth/token/"): lambda w: {"username": "alice", "password": "pw-for-tests-1"},
    ("POST", "/api/orders/"): lambda w: {"items": [{"sku": w.product.sku, "quantity": 1}]},
    ("POST", "/api/orders/{id}/reject/"): lambda w: {"reason": "Over budget."},
    ("POST", "/api/stock/receive/"): lambda w: {
        "sku": w.product.sku,
        "warehouse": w.warehouse.code,
        "quantity": 3,
    },
}


# --- state: a refused call changed nothing, an allowed write changed what it should -----------
def _state() -> dict:
    return {
        "orders": {
            pk: (status, customer, priority, auto)
            for pk, status, customer, priority, auto in Order.objects.values_list(
                "pk", "status", "customer_id", "priority", "auto_approve"
            )
        },
        "stock": dict(Stock.objects.values_list("pk", "quantity")),
        "adjustments": StockAdjustment.objects.count(),
        "notifications": dict(Notification.objects.values_list("pk", "read_at")),
        "tokens": dict(Token.objects.values_list("user_id", "key")),
        "paused": set(QueuePause.objects.values_list("queue", flat=True)),
        "runs": dict(JobRun.objects.filter(queue="default").values_list("pk", "status")),
        "terminating": set(
            JobRun.objects.exclude(terminate_requested_by="").values_list(
                "pk", "terminate_requested_by"
            )
        ),
        "tags": set(MonitoredTag.objects.values_list("tag", flat=True)),
    }


def _new_order(b, a, user):
    (pk,) = set(a["orders"]) - set(b["orders"])
    assert a["orders"][pk][1] == user.pk, "the order belongs to its caller"
    return a["orders"][pk]


def _effect_token(w, b, a, user):
    assert w.order.customer_id in a["tokens"]


def _effect_rotate(w, b, a, user):
    assert a["tokens"][user.pk] != b["tokens"][user.pk]
    assert {u: k for u, k in a["tokens"].items() if u != user.pk} == {
        u: k for u, k in b["tokens"].items() if u != user.pk
    }


def _effect_status(status):
    def check(w, b, a, user):
        assert b["orders"][w.order.pk][0] != status
        assert a["orders"][w.order.pk][0] == status
        assert {k: v for k, v in a["orders"].items() if k != w.order.pk} == {
            k: v for k, v in b["orders"].items() if k != w.order.pk
        }

    return check


def _effect_receive(w, b, a, user):
    assert a["stock"][w.stock.pk] == b["stock"][w.stock.pk] + 3


def _effect_read(w, b, a, user):
    assert b["notifications"][w.notification.pk] is None
    assert a["notifications"][w.notification.pk] is not None


def _effect_cancel(w, b, a, user):
    assert b["runs"][w.queued_run.pk] == JobRun.Status.QUEUED
    assert a["runs"][w.queued_run.pk] == JobRun.Status.CANCELLED


def _effect_terminate(w, b, a, user):
    assert b["runs"][w.running_run.pk] == a["runs"][w.running_run.pk] == JobRun.Status.RUNNING
    return a["terminating"] - b["terminating"] == {(w.running_run.pk, user.get_username())}


def _effect_retry(w, b, a, user):
    assert b["runs"][w.failed_run.pk] == JobRun.Status.FAILED
    assert a["runs"][w.failed_run.pk] == JobRun.Status.RETRIED


EFFECTS = {
    ("POST", "/api/auth/token/"): _effect_token,
    ("POST", "/api/auth/token/rotate/"): _effect_rotate,
    ("POST", "/api/orders/"): lambda w, b, a, user: _new_order(b, a, user),
    ("POST", "/api/orders/{id}/approve/"): _effect_status(Order.Status.APPROVED),
    ("POST", "/api/orders/{id}/reject/"): _effect_status(Order.Status.REJECTED),
    ("POST", "/api/orders/{id}/cancel/"): _effect_status(Order.Status.CANCELLED),
    ("POST", "/api/stock/receive/"): _effect_receive,
    ("POST", "/api/notifications/{id}/read/"): _effect_read,
    ("POST", "/dashboard/queues/{queue}/retry/"): _effect_retry,
    ("POST", "/dashboard/queues/{queue}/pause/"): lambda w, b, a, u: "default" in a["paused"],
    ("POST", "/dashboard/queues/{queue}/resume/"): lambda w, b, a, u: "default" not in a["paused"],
    ("POST", "/dashboard/tags/add/"): lambda w, b, a, u: a["tags"] - b["tags"] == {"order:1"},
    ("POST", "/dashboard/tags/remove/"): lambda w, b, a, u: b["tags"] - a["tags"] == {"order:1"},
    ("POST", "/api/jobs/runs/{id}/retry/"): _effect_retry,
    ("POST", "/api/jobs/runs/{id}/cancel/"): _effect_cancel,
    ("POST", "/api/jobs/runs/{id}/terminate/"): _effect_terminate,
    ("POST", "/api/jobs/queues/{queue}/pause/"): lambda w, b, a, u: "default" in a["paused"],
    ("POST", "/api/jobs/queues/{queue}/resume/"): lambda w, b, a, u: "default" not in a["paused"],
}
# Form bodies of page POSTs.
PAGE_BODIES = {
    ("POST", "/dashboard/tags/add/"): {"tag": "order:1"},
    ("POST", "/dashboard/tags/remove/"): {"tag": "order:1"},
}


def _refused(response) -> bool:
    """A 4xx, or a page's redirect to the login page."""
    to_login = response.status_code == 302 and "/admin/login/" in response.get("Location", "")
    return response.status_code >= 400 or to_login


def _assert_state(method, path, response, world, user, before):
    after = _state()
    if _refused(response) or method == "GET" or (method, path) not in EFFECTS:
        # A refusal (and a read) leaves every table as it was.
        assert after == before
        return
    outcome = EFFECTS[(method, path)](world, before, after, user)
    assert outcome is not False, f"{method} {path} did not change what it should"


def test_every_write_has_an_effect_to_check():
    writes = {(m, p) for (m, p) in (*API, *PAGES) if m == "POST"}
    assert writes == set(EFFECTS), sorted(writes ^ set(EFFECTS))


# Outside the matrix on purpose: the Django admin (staff login + model permissions, tested in
# tests/orders/test_admin.py and tests/jobs).
UNCHECKED_PREFIXES = ("/admin/",)


def _concrete(path: str, w) -> str:
    """Fill a path template with the ids of the world's objects."""
    ids = {
        "/api/products/": w.product.pk,
        "/api/orders/": w.order.pk,
        "/api/warehouses/": w.warehouse.pk,
        "/api/stock/": w.stock.pk,
        "/api/notifications/": w.notification.pk,
        "/api/jobs/runs/": w.failed_run.pk,
    }
    if path.startswith("/api/jobs/runs/") and path.endswith("/cancel/"):
        ids["/api/jobs/runs/"] = w.queued_run.pk  # something cancellable
    if path.startswith("/api/jobs/runs/") and path.endswith("/terminate/"):
        ids["/api/jobs/runs/"] = w.running_run.pk  # something running in a cluster
    for prefix, pk in ids.items():
        if path.startswith(prefix):
            path = path.replace("{id}", str(pk))
    return path.replace("{reference}", w.order.reference).replace("{queue}", "default")


def _cells(table):
    return [
        pytest.param(method, path, role, expected, id=f"{method} {path} {role}")
        for (method, path), row in table.items()
        for role, expected in zip(ROLES, row, strict=True)
    ]


@pytest.mark.parametrize(("method", "path", "role", "expected"), _cells(API))
def test_api_matrix(method, path, role, expected, client_as, world, people):
    body = BODIES.get((method, path), lambda w: {})(world)
    client = client_as(role)
    url = _concrete(path, world)
    if path.endswith("/resume/"):
        queue_pause(queue="default")  # something to resume
    before = _state()
    response = _call(client, method, url, body)
    assert response.status_code == expected, response.content[:300]
    _assert_state(method, path, response, world, people[role], before)


def _call(client, method, url, body):
    if method == "GET":
        return client.get(url)
    return client.post(url, body, format="json")


@pytest.mark.parametrize(("method", "path", "role", "expected"), _cells(PAGES))
def test_page_matrix(method, path, role, expected, people, world):
    client = Client()
    if people[role] is not None:
        client.force_login(people[role])
    url = _concrete(path, world)
    if path.endswith("/resume/"):
        queue_pause(queue="default")  # something to resume
    if path == "/dashboard/tags/remove/":
        MonitoredTag.objects.create(tag="order:1", added_at=timezone.now())  # something to remove
    before = _state()
    body = PAGE_BODIES.get((method, path), {})
    response = client.get(url) if method == "GET" else client.post(url, body)
    assert response.status_code == expected
    _assert_state(method, path, response, world, people[role], before)


@pytest.mark.parametrize(
    ("method", "path", "field", "value", "role", "expected"),
    [
        pytest.param(m, p, f, v, role, expected, id=f"{m} {p} {f}={v} {role}")
        for (m, p, f, v), row in FIELDS.items()
        for role, expected in zip(ROLES, row, strict=True)
    ],
)
def test_field_matrix(
    method, path, field, value, role, expected, client_as, world, settings, people
):
    settings.ORDER_CUSTOMERS_MAY_SET_URGENT = False
    body = {**BODIES[(method, path)](world), field: value}
    client = client_as(role)
    before = _state()
    response = _call(client, method, _concrete(path, world), body)
    assert response.status_code == expected, response.content[:300]
    after = _state()
    if expected >= 400:
        assert after == before
    else:
        order = _new_order(before, after, people[role])
        assert {"auto_approve": order[3], "priority": order[2]}[field] == value


def test_every_privileged_field_has_a_row():
    from orders.services import PRIVILEGED_FIELDS

    declared = {(field, value) for field, value in PRIVILEGED_FIELDS}
    covered = {(f, v) for _, _, f, v in FIELDS}
    assert declared == covered, f"Add rows to FIELDS for: {sorted(declared - covered, key=str)}"


# --- the table is complete ------------------------------------------------------------------
def test_every_schema_operation_has_a_row():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    operations = {(m.upper(), p) for p, ops in schema["paths"].items() for m in ops}
    missing = operations - set(API)
    assert not missing, f"Add these operations to the authorisation matrix: {sorted(missing)}"


def _url_names(patterns, prefix="", namespace=""):
    for p in patterns:
        route = prefix + str(p.pattern)
        if isinstance(p, URLResolver):
            ns = f"{namespace}{p.namespace}:" if p.namespace else namespace
            yield from _url_names(p.url_patterns, route, ns)
        elif isinstance(p, URLPattern):
            yield route, f"{namespace}{p.name}" if p.name else p.lookup_str


def _is_unchecked(route: str) -> bool:
    plain = "/" + re.sub(r"^\^", "", route)
    return plain.startswith(UNCHECKED_PREFIXES)


def test_every_url_has_a_row():
    """Also the URLs the schema leaves out (schema, docs, pages): matched by view name."""
    covered = set()
    for _, path in (*API, *PAGES):
        concrete = re.sub(r"\{[^}]+\}", "1", path)
        covered.add(resolve(concrete).view_name)
    known = {name: route for route, name in _url_names(get_resolver().url_patterns)}
    missing = {name: route for name, route in known.items() if not _is_unchecked(route)}
    missing = {n: r for n, r in missing.items() if n not in covered}
    assert not missing, f"URLs without a row in the authorisation matrix: {missing}"
