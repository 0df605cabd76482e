"""Housekeeping jobs of the API layer."""

from __future__ import annotations

from datetime import timedelta

from aktina.core.idempotency import idempotency_keys_purge
from aktina.jobs import Job


class PurgeExpiredIdempotencyKeys(Job):
    """Delete Idempotency-Keys past their TTL (expired keys are already ignored on lookup)."""

    queue = "default"
    timeout = 300
    tries = 3
    backoff = [60, 300]
    unique_for = timedelta(hours=1)

    def unique_id(self) -> str:
        return "idempotency-keys-purge"

    def handle(self) -> None:
        idempotency_keys_purge()
