"""Recording stand-ins for the outside world, for the chaos run: every carrier call and every
e-mail handed to the mail backend is counted in Redis, so several processes (web workers,
cluster workers killed at any moment) add to one tally that bench/chaos.py reads at the end.

- `RecordingCarrier` behaves like a real carrier API: it honours an idempotency key sent with
  the request (the same key returns the first shipment) and without one creates a new shipment
  on every call. It implements the interface of `orders.carriers` (`create_shipment(order, *,
  idempotency_key)`, `void(shipment)`); a caller that sends no key is counted honestly.
  Unlike `orders.carriers.RecordingCarrier` (database rows, for tests), it counts in Redis: the
  outside world's tally must not depend on any transaction of ours committing.
- `RecordingEmailBackend` counts each message, with its recipients and subject.

Configured by CHAOS_RECORD_REDIS_URL and CHAOS_RECORD_PREFIX (bench/chaos.py sets both).
"""

from __future__ import annotations

import json
import os
import uuid
from functools import cache

from django.core.mail.backends.base import BaseEmailBackend
from django.urls import reverse

from orders.carriers import Shipment


@cache
def _redis():
    import redis

    return redis.Redis.from_url(os.environ["CHAOS_RECORD_REDIS_URL"])


def key(name: str) -> str:
    return f"{os.environ['CHAOS_RECORD_PREFIX']}:{name}"


class RecordingCarrier:
    name = "recording"

    def create_shipment(self, order, *, idempotency_key: str | None = None) -> Shipment:
        r = _redis()
        r.hincrby(key("carrier_calls"), str(order.pk), 1)
        tracking = f"REC{uuid.uuid4().hex[:12].upper()}"
        if idempotency_key and not r.set(key(f"idem:{idempotency_key}"), tracking, nx=True):
            # A repeated request: the carrier answers with the shipment it already created.
            tracking = r.get(key(f"idem:{idempotency_key}")).decode()
        else:
            r.hincrby(key("shipments"), str(order.pk), 1)
            r.hset(key("shipment_orders"), tracking, order.pk)
        return Shipment(
            tracking_number=tracking,
            label_url=reverse("orders:label", kwargs={"reference": order.reference}),
        )

    def void(self, shipment: Shipment) -> None:
        r = _redis()
        order_id = r.hget(key("shipment_orders"), shipment.tracking_number)
        if order_id is not None and r.sadd(key("voided_tracking"), shipment.tracking_number):
            r.hincrby(key("voided"), order_id.decode(), 1)


class RecordingEmailBackend(BaseEmailBackend):
    def send_messages(self, email_messages) -> int:
        pipe = _redis().pipeline()
        for message in email_messages:
            pipe.rpush(key("emails"), json.dumps({"to": message.to, "subject": message.subject}))
        pipe.execute()
        return len(email_messages)


def tally() -> dict:
    """What was recorded: carrier calls, shipments and voided shipments per order id, and the
    e-mails."""
    r = _redis()
    calls = {int(k): int(v) for k, v in r.hgetall(key("carrier_calls")).items()}
    shipments = {int(k): int(v) for k, v in r.hgetall(key("shipments")).items()}
    voided = {int(k): int(v) for k, v in r.hgetall(key("voided")).items()}
    emails = [json.loads(m) for m in r.lrange(key("emails"), 0, -1)]
    return {"carrier_calls": calls, "shipments": shipments, "voided": voided, "emails": emails}
