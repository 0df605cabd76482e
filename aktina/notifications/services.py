"""Notifications: a row in the recipient's inbox plus an e-mail job, each once per key."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from aktina.notifications.jobs import SendNotificationEmailJob
from aktina.notifications.models import Notification


def notification_send(
    *,
    recipient,
    kind: str,
    subject: str,
    body: str = "",
    order=None,
    dedupe_key: str | None = None,
) -> Notification | None:
    """Record a notification and, in the same transaction, the job that e-mails it; returns None
    when it was sent already (same recipient and `dedupe_key`)."""
    try:
        with transaction.atomic():
            notification = Notification.objects.create(
                recipient=recipient,
                kind=kind,
                subject=subject,
                body=body,
                order=order,
                dedupe_key=dedupe_key,
            )
            if recipient.email:
                SendNotificationEmailJob(notification).dispatch()
    except IntegrityError:
        if dedupe_key is None:
            raise
        return None
    return notification


def notification_send_to_role(
    *, role: str, kind: str, subject: str, body: str = "", order=None, dedupe_key: str | None = None
) -> list[Notification]:
    users = get_user_model().objects.filter(groups__name=role, is_active=True).distinct()
    return _send_many(users, kind, subject, body, order, dedupe_key)


def _send_many(users: Iterable, kind, subject, body, order, dedupe_key) -> list[Notification]:
    sent = []
    for user in users:
        n = notification_send(
            recipient=user,
            kind=kind,
            subject=subject,
            body=body,
            order=order,
            dedupe_key=dedupe_key,
        )
        if n is not None:
            sent.append(n)
    return sent


def notification_mark_read(*, notification: Notification) -> Notification:
    if notification.read_at is None:
        notification.read_at = timezone.now()
        notification.save(update_fields=["read_at"])
    return notification
