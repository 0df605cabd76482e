"""E-mail leaves in a job on the `notifications` queue: retried, visible in the ledger, never
inside a web request nor the guard loop."""

import smtplib

import pytest
from django.core import mail

from aktina.core import roles
from aktina.jobs import job_failed
from aktina.jobs.models import JobRun
from aktina.jobs.testing import work_off
from aktina.notifications.models import Notification
from aktina.notifications.services import notification_send

pytestmark = pytest.mark.django_db
EMAIL_JOB = "aktina.notifications.jobs.SendNotificationEmailJob"


def test_sending_a_notification_queues_the_email(customer, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        notification = notification_send(recipient=customer, kind="k", subject="Hello", body="b")
    assert mail.outbox == []
    run = JobRun.objects.get(job_name=EMAIL_JOB)
    assert run.queue == "notifications"
    with django_capture_on_commit_callbacks(execute=True):
        work_off(queue="notifications")
    assert [m.to for m in mail.outbox] == [[customer.email]]
    notification.refresh_from_db()
    assert notification.emailed_at is not None
    # A second delivery of the same run (at-least-once) does not mail again.
    with django_capture_on_commit_callbacks(execute=True):
        from aktina.notifications.jobs import SendNotificationEmailJob

        SendNotificationEmailJob(notification).handle()
    assert len(mail.outbox) == 1


class BrokenBackend:
    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        raise smtplib.SMTPServerDisconnected("the mail server went away")


def test_a_failing_mail_server_is_retried_by_the_ledger(
    customer, settings, django_capture_on_commit_callbacks
):
    settings.EMAIL_BACKEND = "tests.notifications.test_email.BrokenBackend"
    with django_capture_on_commit_callbacks(execute=True):
        notification_send(recipient=customer, kind="k", subject="Hello")
        work_off(queue="notifications")
    run = JobRun.objects.get(job_name=EMAIL_JOB)
    assert (run.status, run.attempts) == (JobRun.Status.QUEUED, 1)
    assert "SMTPServerDisconnected" in run.last_error
    assert Notification.objects.get().emailed_at is None


def test_the_job_failed_alert_sends_no_mail_on_the_guard_path(
    make_user, django_capture_on_commit_callbacks
):
    make_user(roles.OPERATIONS, username="otto")
    run = JobRun.objects.create(
        job_name="x.Y",
        queue="default",
        created_at="2026-01-01T00:00Z",
        available_at="2026-01-01T00:00Z",
        status=JobRun.Status.FAILED,
    )
    with django_capture_on_commit_callbacks(execute=True):
        job_failed.send(sender=JobRun, run=run, exception_text="boom")
    assert mail.outbox == []
    assert JobRun.objects.filter(job_name=EMAIL_JOB).count() == 1


def test_email_timeout_comes_from_the_environment():
    from tests.core.test_settings import _settings_with

    assert _settings_with({}, "settings.EMAIL_TIMEOUT") == "10"
    assert _settings_with({"EMAIL_TIMEOUT": "3"}, "settings.EMAIL_TIMEOUT") == "3"


def test_a_request_that_notifies_sends_no_mail(
    as_user, customer, make_user, django_capture_on_commit_callbacks
):
    from orders.models import Product
    from orders.services import order_create

    Product.objects.create(sku="SKU-M", name="m", unit_price=1)
    order = order_create(customer=customer, items=[{"sku": "SKU-M", "quantity": 1}])
    manager = make_user(roles.MANAGER, username="mona")
    with django_capture_on_commit_callbacks(execute=True):
        response = as_user(manager).post(
            f"/api/orders/{order.pk}/reject/", {"reason": "no credit"}, format="json"
        )
    assert response.status_code == 200
    assert mail.outbox == []  # the customer's e-mail waits in the ledger
    assert JobRun.objects.filter(job_name=EMAIL_JOB, status=JobRun.Status.QUEUED).exists()


def test_the_job_failed_alert_links_to_the_run_in_the_admin_absolutely(make_user, settings):
    settings.SITE_URL = "https://scm.example.com"
    operator = make_user(roles.OPERATIONS, username="olga")
    run = JobRun.objects.create(
        job_name="x.Y",
        queue="default",
        created_at="2026-01-01T00:00Z",
        available_at="2026-01-01T00:00Z",
        status=JobRun.Status.FAILED,
    )
    job_failed.send(sender=JobRun, run=run, exception_text="boom")
    body = operator.notifications.get(kind="job_failed").body
    assert f"https://scm.example.com/admin/jobs/jobrun/{run.pk}/change/" in body
