"""Handing one notification to the mail backend; run by `SendNotificationEmailJob` only."""

from __future__ import annotations

from django.core.mail import send_mail
from django.utils import timezone

from aktina.notifications.models import Notification


def notification_email(*, notification: Notification) -> bool:
    """E-mail `notification` unless it was e-mailed already; returns whether a mail went out.

    At least once: a worker killed between the hand-off and the `emailed_at` update mails it
    again on the next attempt. A mail server error propagates, so the job retries it.
    """
    notification = Notification.objects.select_related("recipient").get(pk=notification.pk)
    if notification.emailed_at is not None or not notification.recipient.email:
        return False
    send_mail(
        notification.subject,
        notification.body or notification.subject,
        None,
        [notification.recipient.email],
        fail_silently=False,
    )
    Notification.objects.filter(pk=notification.pk).update(emailed_at=timezone.now())
    return True
