"""Idempotency-Key on POST /api/orders/, as Stripe and the IETF draft define it."""

import datetime as dt
import threading

import pytest
from django.db import connection, connections
from django.utils import timezone
from rest_framework.test import APIClient

from aktina.core import roles
from aktina.core.jobs import PurgeExpiredIdempotencyKeys
from aktina.core.models import IdempotencyKey
from aktina.jobs.testing import work_off
from orders.models import Order
from tests.api.conftest import body
from tests.api.test_error_format import assert_documented_shape
from tests.factories import UserFactory

ORDERS = "/api/orders/"


def post(client, payload, key):
    return client.post(ORDERS, payload, format="json", HTTP_IDEMPOTENCY_KEY=key)


@pytest.mark.django_db
def test_replay_returns_the_stored_201_and_first_order_marked_replayed(as_user, customer, stock):
    client = as_user(customer)
    first = post(client, body(("SKU-A", 2)), "k-1")
    assert first.status_code == 201, first.json()
    assert "Idempotent-Replayed" not in first.headers
    # The order moves on; the replay still shows it as it was created.
    Order.objects.update(status=Order.Status.CANCELLED)
    again = post(client, body(("SKU-A", 2)), "k-1")
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert Order.objects.count() == 1


@pytest.mark.django_db
def test_same_key_with_another_body_is_422_and_places_nothing(as_user, customer, stock):
    client = as_user(customer)
    assert post(client, body(("SKU-A", 2)), "k-1").status_code == 201
    response = post(client, body(("SKU-A", 3)), "k-1")
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "idempotency_key_reused"
    assert Order.objects.count() == 1


@pytest.mark.django_db
def test_key_order_in_body_does_not_change_the_fingerprint(as_user, customer, stock):
    client = as_user(customer)
    first = post(client, {"items": [{"sku": "SKU-A", "quantity": 1}], "priority": "normal"}, "k")
    again = post(client, {"priority": "normal", "items": [{"quantity": 1, "sku": "SKU-A"}]}, "k")
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["Idempotent-Replayed"] == "true"


@pytest.mark.django_db
def test_a_400_is_not_stored_so_the_corrected_request_may_reuse_the_key(as_user, customer, stock):
    """The choice made: a failed request changed nothing and stores nothing (as at Stripe)."""
    client = as_user(customer)
    bad = post(client, body(("NOPE", 1)), "k-1")
    assert bad.status_code == 400
    assert not IdempotencyKey.objects.exists()
    good = post(client, body(("SKU-A", 1)), "k-1")
    assert good.status_code == 201
    assert "Idempotent-Replayed" not in good.headers
    assert Order.objects.count() == 1


@pytest.mark.django_db
def test_a_key_belongs_to_one_user(as_user, make_user, stock):
    alice, bob = make_user(roles.CUSTOMER), make_user(roles.CUSTOMER)
    assert post(as_user(alice), body(("SKU-A", 1)), "shared").status_code == 201
    response = post(as_user(bob), body(("SKU-A", 1)), "shared")
    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response.headers
    assert Order.objects.filter(customer=bob).count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "key", ["x" * 256, "a\x00b", "line\nbreak", "tab\there", "del\x7f", "", '""']
)
def test_bad_keys_are_400_in_the_documented_shape_and_place_nothing(
    as_user, customer, stock, key, openapi
):
    response = post(as_user(customer), body(("SKU-A", 1)), key)
    assert response.status_code == 400, response.content
    assert response.json()["errors"][0]["attr"] == "Idempotency-Key"
    assert_documented_shape(openapi, ORDERS, "POST", "400", response.json())
    assert not Order.objects.exists()


@pytest.mark.django_db
def test_a_255_character_key_and_a_quoted_key_are_accepted(as_user, customer, stock):
    client = as_user(customer)
    assert post(client, body(("SKU-A", 1)), "k" * 255).status_code == 201
    assert post(client, body(("SKU-A", 1)), '"quoted"').status_code == 201
    assert IdempotencyKey.objects.filter(key="quoted").exists()


@pytest.mark.django_db
def test_an_expired_key_is_a_new_key_and_the_purge_job_deletes_it(
    as_user, customer, stock, settings
):
    client = as_user(customer)
    assert post(client, body(("SKU-A", 1)), "k-1").status_code == 201
    stored = IdempotencyKey.objects.get()
    ttl = stored.expires_at - stored.created_at
    assert ttl == dt.timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS) == dt.timedelta(hours=24)
    IdempotencyKey.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    again = post(client, body(("SKU-A", 5)), "k-1")
    assert again.status_code == 201
    assert "Idempotent-Replayed" not in again.headers
    assert Order.objects.count() == 2
    assert IdempotencyKey.objects.count() == 1

    IdempotencyKey.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    PurgeExpiredIdempotencyKeys.dispatch()
    assert work_off(queue="default") == 1
    assert not IdempotencyKey.objects.exists()


@pytest.mark.django_db
def test_the_purge_keeps_live_keys(as_user, customer, stock):
    assert post(as_user(customer), body(("SKU-A", 1)), "k-1").status_code == 201
    PurgeExpiredIdempotencyKeys.dispatch()
    work_off(queue="default")
    assert IdempotencyKey.objects.count() == 1


@pytest.mark.django_db
def test_the_purge_is_scheduled_after_migrate():
    from django_q.models import Schedule

    from aktina.core.schedules import PURGE_SCHEDULE

    schedule = Schedule.objects.get(name=PURGE_SCHEDULE)
    assert schedule.func == "aktina.core.schedules.idempotency_purge_dispatch"
    assert schedule.schedule_type == Schedule.HOURLY


@pytest.mark.postgres
@pytest.mark.timeout(120)
def test_ten_concurrent_identical_posts_place_exactly_one_order(transactional_db, stock):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (DATABASE_URL=postgres://...): SQLite serialises writers")
    customer = UserFactory(role=roles.CUSTOMER)
    barrier = threading.Barrier(10)
    responses = []
    lock = threading.Lock()

    def send():
        client = APIClient()
        client.force_authenticate(customer)
        try:
            barrier.wait()
            response = post(client, body(("SKU-A", 2)), "same-key")
            outcome = (response.status_code, response.headers.get("Idempotent-Replayed"),
                       response.json())  # fmt: skip
        finally:
            connections.close_all()
        with lock:
            responses.append(outcome)

    threads = [threading.Thread(target=send) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert Order.objects.count() == 1
    firsts = [r for r in responses if r[0] == 201 and r[1] is None]
    replays = [r for r in responses if r[0] == 201 and r[1] == "true"]
    conflicts = [r for r in responses if r[0] == 409]
    assert len(firsts) == 1, responses
    assert len(firsts) + len(replays) + len(conflicts) == 10, responses
    assert all(r[2] == firsts[0][2] for r in replays)
    assert all(r[2]["errors"][0]["code"] == "idempotency_key_in_progress" for r in conflicts)


@pytest.mark.postgres
@pytest.mark.timeout(60)
def test_a_twin_in_flight_gets_409(transactional_db, stock, settings):
    """The first request holds its key row, uncommitted; the twin waits
    IDEMPOTENCY_KEY_WAIT_SECONDS and answers 409 in the documented shape."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (DATABASE_URL=postgres://...): SQLite serialises writers")
    from django.db import transaction
    from drf_spectacular.generators import SchemaGenerator

    settings.IDEMPOTENCY_KEY_WAIT_SECONDS = 1
    customer = UserFactory(role=roles.CUSTOMER)
    holding, release = threading.Event(), threading.Event()

    def first_in_flight():
        try:
            with transaction.atomic():
                now = timezone.now()
                IdempotencyKey.objects.create(
                    user=customer, key="k", fingerprint="f", status_code=0, response_body={},
                    created_at=now, expires_at=now + dt.timedelta(hours=1),
                )  # fmt: skip
                holding.set()
                release.wait(30)
                transaction.set_rollback(True)
        finally:
            connections.close_all()

    thread = threading.Thread(target=first_in_flight)
    thread.start()
    try:
        assert holding.wait(10)
        client = APIClient()
        client.force_authenticate(customer)
        response = post(client, body(("SKU-A", 1)), "k")
    finally:
        release.set()
        thread.join()
    assert response.status_code == 409
    assert response.json()["errors"][0]["code"] == "idempotency_key_in_progress"
    schema = SchemaGenerator().get_schema(request=None, public=True)
    assert_documented_shape(schema, "/api/orders/", "POST", "409", response.json())
    assert not Order.objects.exists()
