"""The chaos run's recording carrier counts what a real carrier would do: the same idempotency
key returns the first shipment, and a call without one ships again."""

import os
import uuid

import pytest

from orders.models import Order

pytestmark = pytest.mark.django_db

REDIS_URL = os.environ.get("CHAOS_REDIS_URL", "redis://127.0.0.1:6379/14")


@pytest.fixture
def recording(monkeypatch):
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError:
        pytest.skip(f"the recording stand-ins need Redis at {REDIS_URL}")
    from bench import recording

    monkeypatch.setenv("CHAOS_RECORD_REDIS_URL", REDIS_URL)
    monkeypatch.setenv("CHAOS_RECORD_PREFIX", f"test-record-{uuid.uuid4().hex}")
    recording._redis.cache_clear()
    yield recording
    client = recording._redis()
    for key in client.scan_iter(f"{os.environ['CHAOS_RECORD_PREFIX']}:*"):
        client.delete(key)


def test_a_repeated_call_without_a_key_ships_twice_and_with_one_once(recording, customer):
    order = Order.objects.create(customer=customer)
    carrier = recording.RecordingCarrier()

    first = carrier.create_shipment(order, idempotency_key=f"order-{order.pk}")
    again = carrier.create_shipment(order, idempotency_key=f"order-{order.pk}")
    assert again.tracking_number == first.tracking_number
    assert recording.tally()["shipments"] == {order.pk: 1}

    carrier.create_shipment(order)
    carrier.create_shipment(order)
    assert recording.tally()["shipments"] == {order.pk: 3}
    assert recording.tally()["carrier_calls"] == {order.pk: 4}


def test_every_message_handed_to_the_mail_backend_is_counted(recording):
    backend = recording.RecordingEmailBackend()
    from django.core.mail import EmailMessage

    sent = backend.send_messages([EmailMessage("Shipped", "b", to=["a@x"]) for _ in range(2)])
    assert sent == 2
    assert [m["subject"] for m in recording.tally()["emails"]] == ["Shipped", "Shipped"]
