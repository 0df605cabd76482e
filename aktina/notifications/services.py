"""Notifications: a row in the recipient's inbox plus an email, each sent once per key."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from aktina.notifications.models import Notification

logger = logging.getLogger(__name__)


def notification_send(
    *,
    recipient,
    kind: str,
    subject: str,
    body: str = "",
    order=None,
    dedupe_key: str | None = None,
) -> Notification | None:
    """Record a notification and email it after commit; returns None when already sent."""
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
    except IntegrityError:
        if dedupe_key is None:
            raise
        return None
    if recipient.email:
        transaction.on_commit(lambda: _email(notification.pk))
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


def _email(notification_id: int) -> None:
    # An unreachable mail server must not undo the notification: it stays in the inbox.
    notification = Notification.objects.select_related("recipient").get(pk=notification_id)
    try:
        send_mail(
            notification.subject,
            notification.body or notification.subject,
            None,
            [notification.recipient.email],
        )
    except OSError:
        logger.exception("email for notification %s failed", notification_id)
        return
    Notification.objects.filter(pk=notification_id).update(emailed_at=timezone.now())
