"""Pause and resume against a real `manage.py qcluster` (issue 14 §5): the cluster honours a
pause written by another process within one sweeper interval, loses nothing, and starts the
paused runs after the resume."""

import time

import pytest

from aktina.jobs.models import JobRun
from aktina.jobs.pausing import queue_pause, queue_resume
from tests.jobs.sample_jobs import MarkJob, marks_of
from tests.live import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
Status = JobRun.Status
SWEEP = 1
FAST = {
    "JOBS_SWEEP_SECONDS": str(SWEEP),
    "JOBS_LEASE_GRACE_SECONDS": "4",
    "Q_WORKERS": "2",
}


def succeeded(*runs) -> bool:
    ids = [r.pk for r in runs]
    return JobRun.objects.filter(pk__in=ids, status=Status.SUCCEEDED).count() == len(ids)


def test_a_paused_queue_starts_nothing_on_a_live_cluster_until_resumed(live_cluster, tmp_path):
    live_cluster(**FAST)
    warm = MarkJob.dispatch(str(tmp_path), "warm")
    wait_until(lambda: succeeded(warm), timeout=60, message="the cluster to start working")

    queue_pause(queue="default")  # this process, not the cluster's: only the row tells it
    # The bound under test: every host sees the pause within a sweep. The held runs fall due
    # just after it, so the ledger itself holds them until every host must have seen it.
    held = [MarkJob(str(tmp_path), f"held{i}").delay(SWEEP + 0.5).dispatch() for i in range(3)]
    control = MarkJob(str(tmp_path), "control").on_queue("analytics").dispatch()
    wait_until(lambda: succeeded(control), timeout=60, message="another queue's run")
    # Long enough for the sweeper to re-deliver the held runs several times (resend after 1 s).
    deadline = time.monotonic() + 4 * SWEEP + 1
    while time.monotonic() < deadline:
        rows = JobRun.objects.filter(pk__in=[r.pk for r in held])
        assert set(rows.values_list("status", "attempts")) == {(Status.QUEUED, 0)}
        time.sleep(0.2)
    assert all(marks_of(tmp_path, f"held{i}") == [] for i in range(3))

    queue_resume(queue="default")
    wait_until(lambda: succeeded(*held), timeout=60, message="the held runs after the resume")
    for i in range(3):
        assert [m[2] for m in marks_of(tmp_path, f"held{i}")] == ["start attempt=1", "end"]
