"""@task functions on real `manage.py qcluster` processes and a file database."""

import datetime as dt
import os
import signal

import pytest
from django.db import transaction
from django.utils import timezone

from aktina.jobs.models import JobRun
from aktina.jobs.tasks_api import TaskResultStatus
from tests.jobs import sample_tasks
from tests.jobs.sample_jobs import marks_of
from tests.live import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
LIVE = {
    "JOBS_SWEEP_SECONDS": "1",
    "JOBS_LEASE_GRACE_SECONDS": "4",
    "Q_WORKERS": "2",
    "JOBS_IMPORT": "tests.jobs.sample_jobs,tests.jobs.sample_tasks",
}


@pytest.fixture(autouse=True)
def _enqueue_knows_what_the_workers_import(settings):
    # enqueue refuses a task no worker imports: this process must know the cluster's list.
    settings.JOBS_IMPORT = LIVE["JOBS_IMPORT"].split(",")


def finished(result) -> bool:
    result.refresh()
    return result.is_finished


def test_tasks_run_on_the_cluster_with_results_failures_and_run_after(live_cluster, tmp_path):
    with pytest.raises(RuntimeError), transaction.atomic():
        sample_tasks.mark_task.enqueue(str(tmp_path), "rolled-back")
        raise RuntimeError("the caller's transaction fails")
    added = sample_tasks.add.enqueue(2, 40)
    failing = sample_tasks.boom.enqueue("lost key")
    when = timezone.now() + dt.timedelta(seconds=3)
    later = sample_tasks.mark_task.using(run_after=when).enqueue(str(tmp_path), "later")
    live_cluster(**LIVE)

    wait_until(lambda: finished(added) and finished(failing), timeout=60, message="two results")
    assert added.status == TaskResultStatus.SUCCESSFUL
    assert added.return_value == 42
    assert added.worker_ids[0] != ""
    assert failing.status == TaskResultStatus.FAILED
    [error] = failing.errors
    assert error.exception_class is KeyError
    assert "lost key" in error.traceback
    assert "in boom" in error.traceback

    wait_until(lambda: finished(later), timeout=60, message="the run_after task")
    assert later.return_value == "later"
    assert later.started_at >= when  # not before run_after
    # The rolled-back enqueue left nothing that could run.
    assert not marks_of(tmp_path, "rolled-back")
    assert JobRun.objects.count() == 3


def test_a_task_whose_worker_is_killed_is_run_again_and_its_result_recorded_once(
    live_cluster, tmp_path
):
    live_cluster(**LIVE)
    result = sample_tasks.slow_first_attempt.enqueue(str(tmp_path), "victim", 60)
    wait_until(lambda: marks_of(tmp_path, "victim"), timeout=30, message="the task to start")
    os.kill(int(marks_of(tmp_path, "victim")[0][1]), signal.SIGKILL)

    # The sentinel hands the killed worker's run back; the sweeper re-sends it.
    wait_until(lambda: finished(result), timeout=90, message="the re-run to finish")
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == {"attempt": 2}
    lines = [line[2] for line in marks_of(tmp_path, "victim")]
    assert lines == ["start attempt=1", "start attempt=2", "end"]  # one completion
    assert result.attempts == 2
    assert len(result.errors) == 1
    assert result.errors[0].exception_class_path == "aktina.jobs.exceptions.JobTimedOut"
    run = JobRun.objects.get(pk=int(result.id))
    assert (run.status, run.attempts, run.return_value) == ("succeeded", 2, {"attempt": 2})
