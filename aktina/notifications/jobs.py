"""E-mail leaves in a job: retried with backoff, visible in the ledger, never in a web request
and never in the guard loop (the sentinel's failures only write rows)."""

from __future__ import annotations

from aktina.jobs import Job
from aktina.notifications.email import notification_email
from aktina.notifications.models import Notification


class SendNotificationEmailJob(Job):
    queue = "notifications"
    # Well above EMAIL_TIMEOUT (10 s by default): a hung SMTP server times out inside the job.
    timeout = 60
    tries = 5
    backoff = [30, 120, 600, 1800]
    delete_when_missing_models = True
    # A mail server that is down would otherwise alert operations by e-mail, which fails too.
    # The run stays failed in the ledger and the notification stays in the inbox.
    notify_operations_on_failure = False

    def __init__(self, notification: Notification):
        self.notification = notification

    def unique_id(self) -> str:
        return f"notification-email-{self.notification.pk}"

    def handle(self) -> None:
        notification_email(notification=self.notification)
