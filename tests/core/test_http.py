"""The foundation's HTTP surface: health, token auth, schema, products, admin pages."""

import pytest
from django.contrib import admin
from django.urls import reverse

from tests.factories import ProductFactory, StockFactory, WarehouseFactory

pytestmark = pytest.mark.django_db


def test_health_reports_every_component_up(api):
    response = api.get("/api/health/")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert all(body[name]["ok"] for name in ("database", "cache", "broker"))


def test_health_is_503_when_a_component_is_down(api, monkeypatch):
    from aktina.core import health

    def broken():
        raise ConnectionError("password=hunter2 leaked in a message")

    monkeypatch.setitem(health.CHECKS, "cache", broken)
    response = api.get("/api/health/")
    assert response.status_code == 503
    assert response.json()["cache"] == {"ok": False, "error": "ConnectionError"}
    assert "hunter2" not in response.content.decode()


def test_token_auth_issues_a_token_that_authenticates(api, customer):
    response = api.post(
        "/api/auth/token/", {"username": "alice", "password": "pw-for-tests-1"}, format="json"
    )
    assert response.status_code == 200
    token = response.json()["token"]
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert api.get("/api/products/").status_code == 200


def test_token_auth_rejects_a_wrong_password_with_a_field_free_400(api, customer):
    response = api.post(
        "/api/auth/token/", {"username": "alice", "password": "nope"}, format="json"
    )
    assert response.status_code == 400
    assert "token" not in response.json()


def test_anonymous_product_list_is_401(api):
    assert api.get("/api/products/").status_code == 401


def test_products_are_paginated_filterable_and_show_available_quantity(as_user, customer):
    a, b = WarehouseFactory(), WarehouseFactory()
    widget = ProductFactory(sku="WIDGET", name="Blue widget")
    StockFactory(product=widget, warehouse=a, quantity=10, quantity_allocated=4)
    StockFactory(product=widget, warehouse=b, quantity=5)
    ProductFactory(sku="GADGET", name="Gadget")
    client = as_user(customer)
    body = client.get("/api/products/", {"name": "widget"}).json()
    assert body["count"] == 1
    assert body["results"][0]["quantity_available"] == 11
    in_stock = client.get("/api/products/", {"in_stock": "false"}).json()
    assert [p["sku"] for p in in_stock["results"]] == ["GADGET"]


def test_product_list_runs_a_fixed_number_of_queries(as_user, customer, django_assert_num_queries):
    client = as_user(customer)
    for _ in range(3):
        ProductFactory()
    client.get("/api/products/")  # warm up the auth lookup path
    with django_assert_num_queries(2):  # count + page (force_authenticate: no auth query)
        client.get("/api/products/")
    for _ in range(20):
        ProductFactory()
    with django_assert_num_queries(2):
        client.get("/api/products/")


def test_openapi_schema_generates_without_warnings_and_validates():
    from io import StringIO

    from django.core.management import call_command

    out, err = StringIO(), StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out, stderr=err)
    assert "openapi: 3" in out.getvalue()


def test_schema_and_docs_are_served(api):
    assert api.get("/api/schema/").status_code == 200
    assert api.get("/api/docs/").status_code == 200


@pytest.mark.parametrize("model", list(admin.site._registry), ids=lambda m: m._meta.label)
def test_every_admin_changelist_and_add_page_renders(client, superuser, model):
    client.force_login(superuser)
    info = (model._meta.app_label, model._meta.model_name)
    assert client.get(reverse("admin:{}_{}_changelist".format(*info))).status_code == 200
    model_admin = admin.site._registry[model]
    request = type("R", (), {"user": superuser})()
    if model_admin.has_add_permission(request):
        assert client.get(reverse("admin:{}_{}_add".format(*info))).status_code == 200
