"""What an operator uses: the `jobs` command and the job-run admin."""

import subprocess
import sys
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from aktina.core import roles
from aktina.jobs.models import JobRun
from aktina.jobs.testing import work_off
from tests.jobs.sample_jobs import BrokenJob, NoopJob
from tests.live import ROOT, process_env

pytestmark = pytest.mark.django_db
Status = JobRun.Status


def jobs(*args) -> str:
    out = StringIO()
    call_command("jobs", *args, stdout=out)
    return out.getvalue()


def test_list_failed_shows_the_error_and_stats_count_per_queue(tmp_path):
    bad = BrokenJob.dispatch(str(tmp_path))
    NoopJob.dispatch()
    work_off()
    listing = jobs("list", "--failed")
    assert str(bad.pk) in listing
    assert "PermanentError: the order is malformed" in listing
    stats = jobs("stats")
    default_row = next(line for line in stats.splitlines() if line.split()[0] == "default")
    assert default_row.split()[1:6] == ["0", "0", "0", "1", "1"]


def test_retry_by_id_by_queue_and_all_failed(tmp_path):
    runs = [BrokenJob.dispatch(str(tmp_path)) for _ in range(3)]
    work_off()
    assert "queued again as run" in jobs("retry", str(runs[0].pk))
    assert "2 failed run(s) queued again" in jobs("retry", "--queue", "default")
    originals = JobRun.objects.filter(pk__in=[r.pk for r in runs])
    assert set(originals.values_list("status", flat=True)) == {Status.RETRIED}
    assert set(JobRun.objects.filter(retry_of__in=runs).values_list("status", flat=True)) == {
        Status.QUEUED
    }
    work_off()
    assert "3 failed run(s)" in jobs("retry", "--all-failed")
    assert "0 failed run(s)" in jobs("retry", "--all-failed")  # the retried ones are not failed


def test_cancel_forget_and_flush(tmp_path):
    queued, done = NoopJob.dispatch(), NoopJob.dispatch()
    done_id = done.pk
    work_off(limit=1)
    assert "cancelled" in jobs("cancel", str(done_id))
    assert "forgotten" in jobs("forget", str(queued.pk))
    assert "1 run(s) deleted" in jobs("flush", "--older-than", "0s")
    assert JobRun.objects.count() == 0


def test_errors_are_one_clear_line():
    with pytest.raises(CommandError, match="no run with id 424242"):
        jobs("retry", "424242")
    run = NoopJob.dispatch()
    with pytest.raises(CommandError, match="cancel it or let it finish"):
        jobs("forget", str(run.pk))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["jobs", "flush", "--older-than", "7x"], "not a duration"),
        (["jobs", "retry", "abc"], "invalid int value"),
        (["jobs", "nope"], "invalid choice"),
        (["jobs", "cancel"], "required"),
    ],
)
def test_bad_arguments_exit_non_zero_with_one_line(args, message):
    out = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1
    assert message in out.stderr


def test_admin_shows_runs_with_attempts_only_to_operations(client, make_user, tmp_path):
    run = BrokenJob.dispatch(str(tmp_path))
    work_off()
    url = f"/admin/jobs/jobrun/{run.pk}/change/"
    client.force_login(make_user(roles.MANAGER))
    assert client.get("/admin/jobs/jobrun/").status_code == 403
    client.force_login(make_user(roles.OPERATIONS))
    page = client.get(url)
    assert page.status_code == 200
    body = page.content.decode()
    assert "the order is malformed" in body
    assert "Traceback" in body
    listing = client.get("/admin/jobs/jobrun/", {"status__exact": "failed", "q": "Broken"})
    assert str(run.pk) in listing.content.decode()


def test_admin_retry_action_requeues_failed_runs(client, make_user, tmp_path):
    run = BrokenJob.dispatch(str(tmp_path))
    work_off()
    client.force_login(make_user(roles.OPERATIONS))
    response = client.post(
        "/admin/jobs/jobrun/",
        {"action": "retry_runs", "_selected_action": [run.pk]},
        follow=True,
    )
    assert response.status_code == 200
    run.refresh_from_db()
    assert run.status == Status.RETRIED
    assert run.attempt_log.count() == 1  # the history stays with the run that failed
    again = run.retries.get()
    assert (again.status, again.attempts, again.payload) == (Status.QUEUED, 0, run.payload)


# --- issue 11 §5: commands that crashed or said nothing --------------------------------------
@pytest.mark.integration
@pytest.mark.parametrize("target", [["--queue", "default"], ["--all-failed"]])
def test_retry_by_queue_and_all_failed_retries_every_failed_run(transactional_db, tmp_path, target):
    # Seven, as reported, and through manage.py on the file database: there the broker's first
    # send closed the connection that the retry loop's iterator was still reading, after two.
    runs = [BrokenJob.dispatch(str(tmp_path)) for _ in range(7)]
    work_off()
    connection.close()  # the command's process must see our rows
    out = subprocess.run(
        [sys.executable, "manage.py", "jobs", "retry", *target],
        cwd=ROOT, env=process_env(), capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "7 failed run(s) queued again" in out.stdout
    assert JobRun.objects.filter(pk__in=[r.pk for r in runs], status=Status.FAILED).count() == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["jobs", "flush", "--older-than", "99999999d"], "too long"),
        (["jobs", "list", "--queue", "nope"], "unknown queue 'nope'"),
        (["jobs", "retry", "--queue", "nope"], "unknown queue 'nope'"),
    ],
)
def test_impossible_arguments_exit_non_zero_with_one_line(args, message):
    out = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert out.returncode != 0
    assert out.stderr.count("\n") == 1, out.stderr
    assert message in out.stderr
