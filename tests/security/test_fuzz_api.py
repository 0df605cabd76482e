"""Fuzz every operation of the app's own OpenAPI schema, as every role: never a 5xx, and every
documented response matches its schema.

Schemathesis generates valid and invalid requests (positive and negative modes) and sends each
one through the real WSGI stack (middleware, authentication, exception handler) with each
role's token. The run is bounded and derandomised, so CI sees the same cases every time.
"""

import pytest
import schemathesis
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

pytestmark = [pytest.mark.fuzz, pytest.mark.django_db]

MAX_EXAMPLES = 12
FUZZ_ROLES = (
    "customer",
    "manager",
    "inventory_manager",
    "operations",
    "superuser",
    "staff_no_perms",
    "no_role",
)

schema = schemathesis.openapi.from_dict(SchemaGenerator().get_schema(request=None, public=True))
schema.config.generation.update(
    modes=[schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE],
    max_examples=MAX_EXAMPLES,
    deterministic=True,
)
# The coverage phase also sends methods an endpoint does not have (expecting 405, not 500);
# the write methods are the ones a router could get wrong, and keep the run short.
schema.config.phases.coverage.unexpected_methods = {"put", "patch", "delete"}
APP = WSGIHandler()


@pytest.fixture
def wsgi_in_test_transaction():
    """The WSGI handler closes "old" connections around each request, which would close the
    test's own transaction; Django's test client turns that off the same way."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def tokens(people, world, wsgi_in_test_transaction, monkeypatch):
    from rest_framework.throttling import ScopedRateThrottle

    # The fuzzer sends many requests a minute on purpose; throttling has its own tests.
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"auth": None, "order_create": None})
    keys = {None: None}
    for role in FUZZ_ROLES:
        keys[role] = Token.objects.get_or_create(user=people[role])[0].key
    return keys


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_api_survives_fuzzing_as_every_role(case, tokens):
    for key in tokens.values():
        headers = {"Authorization": f"Token {key}"} if key else None
        response = case.call(app=APP, headers=headers)
        case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
