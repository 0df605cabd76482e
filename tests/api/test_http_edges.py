"""HTTP edges that used to crash or answer HTML: deep JSON, NUL in headers, unmatched /api/
URLs, and `make run` on a port already taken."""

import http.client
import os
import socket
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.views import APIView

from aktina.core.parsers import DepthLimitedJSONParser
from orders.models import Order
from tests.api.conftest import body

ROOT = Path(__file__).resolve().parents[2]
DEEP = "[" * 1000 + "]" * 1000


def _api_views(resolver: URLResolver, prefix: str = ""):
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            yield from _api_views(pattern, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            view = getattr(pattern.callback, "cls", None)
            if view is not None and issubclass(view, APIView):
                yield prefix + str(pattern.pattern), view


def test_every_api_view_parses_json_with_the_depth_limited_parser():
    views = list(_api_views(get_resolver()))
    assert len(views) > 10
    for route, view in views:
        json_parsers = [p for p in view().get_parsers() if p.media_type == "application/json"]
        assert [type(p) for p in json_parsers] == [DepthLimitedJSONParser], route


@pytest.mark.django_db
def test_deep_json_is_400_on_the_unauthenticated_token_endpoint(api):
    response = api.post("/api/auth/token/", DEEP, content_type="application/json")
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["code"] == "parse_error"
    assert f"{settings.JSON_MAX_DEPTH} levels" in error["detail"]


@pytest.mark.django_db
@pytest.mark.parametrize("depth", [1000, 100_000])
def test_deep_json_is_400_on_order_create(as_user, customer, stock, depth):
    deep = "[" * depth + "]" * depth
    response = as_user(customer).post("/api/orders/", deep, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "parse_error"


@pytest.mark.django_db
def test_json_up_to_the_limit_is_parsed_one_deeper_is_not(as_user, customer, stock, settings):
    settings.JSON_MAX_DEPTH = 4
    client = as_user(customer)
    ok = {"items": [{"sku": "SKU-A", "quantity": 1}], "x": {"y": []}}  # 4 levels
    assert client.post("/api/orders/", ok, format="json").status_code == 201
    too_deep = {"items": [{"sku": "SKU-A", "quantity": 1, "z": [[]]}]}  # 5 levels
    response = client.post("/api/orders/", too_deep, format="json")
    assert response.status_code == 400
    assert "4 levels" in response.json()["errors"][0]["detail"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("post", "/api/orders/1.5/cancel/"),
        ("get", "/api/orders/abc/"),
        ("get", "/api/no-such-thing/"),
        ("delete", "/api/orders/1/cancel/extra/"),
    ],
)
def test_unmatched_api_urls_answer_a_json_404(as_user, customer, method, url):
    response = getattr(as_user(customer), method)(url)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "type": "client_error",
        "errors": [{"code": "not_found", "detail": "Not found.", "attr": None}],
    }


@pytest.mark.django_db
def test_a_url_without_its_slash_is_still_redirected(api):
    assert api.get("/api/health").status_code == 301


@pytest.mark.django_db
def test_pages_outside_the_api_keep_django_html_404(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")


@pytest.mark.django_db(transaction=True)
def test_nul_in_the_idempotency_key_is_400_over_a_real_socket(live_server, customer, stock):
    """Through a real WSGI server (as runserver serves): on PostgreSQL the key reached the
    database and the NUL made it a 500."""
    from rest_framework.authtoken.models import Token

    token = Token.objects.create(user=customer)
    url = urlsplit(live_server.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    payload = '{"items": [{"sku": "SKU-A", "quantity": 1}]}'
    conn.request(
        "POST",
        "/api/orders/",
        body=payload,
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Token {token.key}",
            "Idempotency-Key": "abc\x00def",
        },
    )
    response = conn.getresponse()
    assert response.status == 400, response.read()
    assert b'"attr":"Idempotency-Key"' in response.read().replace(b" ", b"")
    assert not Order.objects.exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.timeout(60)
def test_run_script_exits_non_zero_when_the_port_is_taken(tmp_path):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    env = {
        **os.environ,
        "PORT": str(port),
        "PY": str(ROOT / ".venv/bin/python"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }
    try:
        done = subprocess.run(
            ["bash", "scripts/run.sh"], cwd=ROOT, env=env, capture_output=True, text=True,
            timeout=50, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    finally:
        taken.close()
    assert done.returncode != 0
    assert f"port {port} on 127.0.0.1 is already in use" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


@pytest.mark.django_db
def test_the_body_helper_places_the_order_it_describes(as_user, customer, stock):
    """The helper the edge cases build on: the server reads its body as the lines it names."""
    response = as_user(customer).post("/api/orders/", body(("SKU-A", 3)), format="json")
    assert response.status_code == 201
    assert [(i["sku"], i["quantity"]) for i in response.json()["items"]] == [("SKU-A", 3)]


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/auth/token/", "/api/orders/"])
def test_a_body_over_the_upload_limit_is_413_in_the_error_format(
    as_user, customer, stock, settings, path
):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    payload = '{"items": [{"sku": "SKU-A", "quantity": 1, "x": "' + "a" * 2000 + '"}]}'
    response = as_user(customer).post(path, payload, content_type="application/json")
    assert response.status_code == 413
    error = response.json()["errors"][0]
    assert error["code"] == "request_too_large"
    assert "1000 bytes" in error["detail"]


@pytest.mark.django_db
def test_a_refused_privileged_field_names_the_permission_it_needs(as_user, customer, stock):
    response = as_user(customer).post(
        "/api/orders/", body(("SKU-A", 1), auto_approve=True), format="json"
    )
    assert response.status_code == 403
    assert "orders.approve_order" in response.json()["errors"][0]["detail"]


@pytest.mark.django_db
def test_post_to_metrics_is_405_not_a_csrf_page(make_user):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user(is_staff=True))
    response = client.post("/metrics")
    assert response.status_code == 405
    assert response["Allow"] == "GET"


@pytest.mark.django_db
def test_the_address_make_run_prints_leads_to_the_dashboard(api):
    response = api.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/dashboard/"
