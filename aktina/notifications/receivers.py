"""Operations hear about every job that failed for good."""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse

from aktina.core.roles import OPERATIONS
from aktina.jobs import job_failed, registered_job
from aktina.notifications.services import notification_send_to_role


def on_job_failed(sender, run, exception_text: str = "", **kwargs) -> None:
    job_class = registered_job(run.job_name)
    if job_class is not None and not job_class.notify_operations_on_failure:
        return
    admin_url = settings.SITE_URL + reverse("admin:jobs_jobrun_change", args=[run.pk])
    notification_send_to_role(
        role=OPERATIONS,
        kind="job_failed",
        subject=f"Job {run.job_name} #{run.pk} failed on queue {run.queue}",
        body=f"{exception_text}\n\nRetry it from the admin: {admin_url}",
        dedupe_key=f"job-failed-{run.pk}-{run.attempts}",
    )


def connect() -> None:
    job_failed.connect(on_job_failed, dispatch_uid="notifications-job-failed")
