"""No secret leaves the process: not in error responses, not in logs, not in operator output.

(`check --deploy` with production settings is tests/core/test_settings.py.)
"""

import io
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from rest_framework.test import APIClient

from aktina.core.redaction import RedactSecrets, redact
from aktina.jobs import Job
from aktina.jobs.models import JobRun
from aktina.jobs.worker import perform

pytestmark = pytest.mark.django_db

DB_PASSWORD = "db-Pa55word-in-url"
DB_URL = f"postgres://aktina:{DB_PASSWORD}@db.internal:5432/aktina"
ROOT = Path(__file__).resolve().parents[2]


class LeakyJob(Job):
    """Fails the way a misconfigured client does: its message quotes a URL with credentials."""

    queue = "default"
    tries = 1

    def __init__(self, order_id: int = 0):
        self.order_id = order_id

    def handle(self):
        raise RuntimeError(f"cannot reach {DB_URL} (key {django_settings.SECRET_KEY})")


@pytest.fixture
def console():
    """What the configured console handler writes (the real LOGGING pipeline, filters and all;
    pytest's caplog handler would bypass the handler's filters)."""
    handler = next(h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler))
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    yield buffer
    handler.setStream(previous)


def assert_clean(text: str) -> None:
    assert DB_PASSWORD not in text
    assert django_settings.SECRET_KEY not in text


# --- error responses ------------------------------------------------------------------------
def test_error_responses_quote_no_secret(client_as, world, monkeypatch):
    assert django_settings.DEBUG is False
    api = client_as("customer")
    responses = [
        api.post("/api/orders/", {"items": [{"sku": DB_URL, "quantity": 0}]}, format="json"),
        api.post("/api/orders/", "{not json", content_type="application/json"),
        APIClient(HTTP_AUTHORIZATION=f"Token {django_settings.SECRET_KEY[:40]}").get(
            "/api/orders/"
        ),
        api.get("/api/orders/999999/"),
        api.delete("/api/orders/"),
        APIClient().post("/api/auth/token/", {"username": "alice", "password": DB_PASSWORD}),
    ]
    assert [r.status_code for r in responses] == [400, 400, 401, 404, 405, 400]
    for response in responses:
        assert_clean(response.content.decode())


def test_a_500_is_a_bare_page_without_the_exception(client_as, world, monkeypatch, console):
    def explode(**kwargs):
        raise RuntimeError(f"cannot reach {DB_URL}")

    monkeypatch.setattr("orders.api.views.product_list", explode)
    api = client_as("customer")
    api.raise_request_exception = False
    response = api.get("/api/products/")
    assert response.status_code == 500
    body = response.content.decode()
    assert "RuntimeError" not in body
    assert "Traceback" not in body
    assert_clean(body)
    # The traceback is logged (django.request) for operators, with the credentials masked.
    logged = console.getvalue()
    assert "RuntimeError: cannot reach postgres://aktina:***@db.internal" in logged
    assert_clean(logged)


# --- logs -----------------------------------------------------------------------------------
def test_a_failing_job_logs_no_secret(console):
    run = LeakyJob.dispatch(1)
    perform(run.pk, 10)
    run.refresh_from_db()
    assert run.status == JobRun.Status.FAILED
    logged = console.getvalue()
    assert "LeakyJob" in logged
    assert "postgres://aktina:***@db.internal" in logged
    assert_clean(logged)


def test_tracebacks_are_masked_too(console):
    try:
        raise ConnectionError(f"redis://:{DB_PASSWORD}@cache:6379/0 refused")
    except ConnectionError:
        logging.getLogger("aktina.jobs").exception("sweeper pass failed")
    logged = console.getvalue()
    assert "redis://:***@cache:6379/0" in logged
    assert_clean(logged)


def test_redaction_masks_configured_secrets_and_url_credentials(settings):
    settings.EMAIL_HOST_PASSWORD = "smtp-password-42"
    text = redact(f"a={settings.SECRET_KEY} b=smtp-password-42 c=https://u:p4ss@h/x d=http://h/x")
    assert text == "a=*** b=*** c=https://u:***@h/x d=http://h/x"
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%s", (DB_URL,), None)
    RedactSecrets().filter(record)
    assert record.getMessage() == "postgres://aktina:***@db.internal:5432/aktina"


# --- API: job errors are for staff ----------------------------------------------------------
def test_customers_do_not_see_job_errors_of_their_order(client_as, world):
    run = LeakyJob.dispatch(world.order)
    perform(run.pk, 10)
    customer_view = client_as("customer").get(f"/api/orders/{world.order.pk}/").json()
    staff_view = client_as("operations").get(f"/api/orders/{world.order.pk}/").json()
    assert [j["status"] for j in customer_view["jobs"]] == ["failed"]
    assert customer_view["jobs"][0]["last_error"] == ""
    assert "RuntimeError" in staff_view["jobs"][0]["last_error"]


# --- operator output ------------------------------------------------------------------------
def test_qinfo_config_masks_the_secret_key():
    out = io.StringIO()
    call_command("qinfo", "--config", stdout=out)
    assert "CLUSTER_NAME: aktina" in out.getvalue()
    assert "SECRET_KEY: ***" in out.getvalue()
    assert django_settings.SECRET_KEY not in out.getvalue()


def test_qinfo_with_production_urls_prints_no_credentials(tmp_path):
    secret_key = "prod-secret-key-" + "x" * 40
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://aktina:{DB_PASSWORD}@127.0.0.1:1/aktina",
        "DJANGO_SECRET_KEY": secret_key,
        "REDIS_URL": f"redis://:{DB_PASSWORD}@127.0.0.1:1/0",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "qinfo", "--config"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "SECRET_KEY: ***" in output
    assert DB_PASSWORD not in output
    assert secret_key not in output
