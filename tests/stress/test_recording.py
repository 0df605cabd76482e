"""The chaos run's recording mail backend counts every message (the recording carrier, shared
with the tests, is tested in tests/orders/test_carriers.py)."""

import os
import uuid

import pytest

pytestmark = pytest.mark.django_db

REDIS_URL = os.environ.get("CHAOS_REDIS_URL", "redis://127.0.0.1:6379/14")


@pytest.fixture
def recording(monkeypatch, tmp_path):
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError:
        pytest.skip(f"the recording stand-ins need Redis at {REDIS_URL}")
    from bench import recording

    monkeypatch.setenv("CHAOS_RECORD_REDIS_URL", REDIS_URL)
    monkeypatch.setenv("CHAOS_RECORD_PREFIX", f"test-record-{uuid.uuid4().hex}")
    monkeypatch.setenv("RECORDING_CARRIER_PATH", str(tmp_path / "carrier.sqlite3"))
    recording._redis.cache_clear()
    yield recording
    client = recording._redis()
    for key in client.scan_iter(f"{os.environ['CHAOS_RECORD_PREFIX']}:*"):
        client.delete(key)


def test_every_message_handed_to_the_mail_backend_is_counted(recording):
    backend = recording.RecordingEmailBackend()
    from django.core.mail import EmailMessage

    sent = backend.send_messages([EmailMessage("Shipped", "b", to=["a@x"]) for _ in range(2)])
    assert sent == 2
    assert [m["subject"] for m in recording.tally()["emails"]] == ["Shipped", "Shipped"]
