"""`Idempotency-Key` for POSTs, as Stripe and draft-ietf-httpapi-idempotency-key-header define it.

The first request with a key stores its fingerprint (method, path, canonical JSON body) and
its response, per user, for `IDEMPOTENCY_KEY_TTL_HOURS`. A retry with the same key and body
gets that response again with `Idempotent-Replayed: true`; the same key with another body is
a 422. The key row is inserted *before* the work and in the same transaction, so a concurrent
twin waits on the unique index until the first commits (then gets the replay) or gives up
after `IDEMPOTENCY_KEY_WAIT_SECONDS` with a 409: never a second order. Only successes are
stored: a request that failed (validation 400, 403, ...) changed nothing, and, as at Stripe,
the client may correct it and send it again with the same key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable

from django.conf import settings
from django.db import IntegrityError, OperationalError, connection, transaction
from django.utils import timezone
from rest_framework import exceptions, status
from rest_framework.request import Request
from rest_framework.response import Response

from aktina.core.models import IdempotencyKey

HEADER = "Idempotency-Key"
MAX_LENGTH = 255
REPLAYED_HEADER = "Idempotent-Replayed"


class KeyInProgress(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "A request with this Idempotency-Key is in progress; retry it shortly."
    default_code = "idempotency_key_in_progress"


class KeyReused(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = (
        "This Idempotency-Key was used for a different request (another body or endpoint); "
        "use a new key for a new request."
    )
    default_code = "idempotency_key_reused"


def _invalid(message: str) -> exceptions.ValidationError:
    return exceptions.ValidationError({HEADER: [message]}, code="invalid")


def idempotency_key_parse(*, value: str | None) -> str | None:
    """The key from the header value, or None without one. Raises a 400 for a bad key."""
    if value is None:
        return None
    # The draft sends the key as a structured-field string ("..."); Stripe sends it bare.
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    if not value:
        raise _invalid("Must not be empty.")
    if len(value) > MAX_LENGTH:
        raise _invalid(f"At most {MAX_LENGTH} characters.")
    # NUL in particular: PostgreSQL cannot store it, and no client means it.
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise _invalid("Must not contain control characters.")
    return value


def request_fingerprint(*, request: Request) -> str:
    data = request.data
    body = dict(data.lists()) if hasattr(data, "lists") else data
    canonical = json.dumps(
        {"method": request.method, "path": request.path, "body": body},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _replay(stored: IdempotencyKey, fingerprint: str) -> Response:
    if stored.fingerprint != fingerprint:
        raise KeyReused()
    return Response(
        stored.response_body, status=stored.status_code, headers={REPLAYED_HEADER: "true"}
    )


def _live(*, user, key: str, now: dt.datetime) -> IdempotencyKey | None:
    return IdempotencyKey.objects.filter(user=user, key=key, expires_at__gt=now).first()


def _claim(*, user, key: str, fingerprint: str, now: dt.datetime) -> IdempotencyKey:
    """Insert the key row; a twin in flight makes this wait (PostgreSQL: at most the
    configured seconds) and then raise IntegrityError once the twin has committed."""
    row = IdempotencyKey(
        user=user,
        key=key,
        fingerprint=fingerprint,
        status_code=0,  # filled in below, before this transaction can commit
        response_body={},
        created_at=now,
        expires_at=now + dt.timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS),
    )
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT set_config('lock_timeout', %s, true)",
                    [f"{settings.IDEMPOTENCY_KEY_WAIT_SECONDS * 1000}ms"],
                )
        row.save(force_insert=True)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout TO DEFAULT")
    return row


def idempotent_response(*, request: Request, respond: Callable[[], Response]) -> Response:
    """Run `respond` once per (user, Idempotency-Key); retries get its stored response."""
    key = idempotency_key_parse(value=request.headers.get(HEADER))
    user = request.user
    if key is None or not user.is_authenticated:
        return respond()
    fingerprint = request_fingerprint(request=request)
    now = timezone.now()
    stored = _live(user=user, key=key, now=now)
    if stored is not None:
        return _replay(stored, fingerprint)
    try:
        with transaction.atomic():
            # An expired key is free again; its old row must not block the insert.
            IdempotencyKey.objects.filter(user=user, key=key, expires_at__lte=now).delete()
            row = _claim(user=user, key=key, fingerprint=fingerprint, now=now)
            response = respond()
            if response.status_code >= 400:
                # A failure changed nothing worth keeping: undo it all, store nothing.
                transaction.set_rollback(True)
                return response
            row.status_code = response.status_code
            row.response_body = response.data
            row.save(update_fields=["status_code", "response_body"])
    except IntegrityError:
        # The twin committed first: its row now holds the outcome.
        stored = _live(user=user, key=key, now=now)
        if stored is None:
            raise
        return _replay(stored, fingerprint)
    except OperationalError as exc:
        if getattr(exc.__cause__, "sqlstate", None) == "55P03":  # lock_not_available
            raise KeyInProgress() from exc
        raise
    return response


def idempotency_keys_purge(*, now: dt.datetime | None = None) -> int:
    """Delete expired keys; returns how many."""
    deleted, _ = IdempotencyKey.objects.filter(expires_at__lte=now or timezone.now()).delete()
    return deleted
