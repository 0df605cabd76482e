"""The runtime (issue 17): batched completions fenced per attempt, worker deaths handed back
within a guard cycle, dead clusters rescued by heartbeat, runs terminated on request, a
shutdown that ends every process within seconds, and the django-q2 internals it relies on."""

import contextlib
import os
import signal
import subprocess
import sys
import time

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django_q.tasks import async_task

from aktina.core import roles
from aktina.jobs import batch, chain
from aktina.jobs.lifecycle import RunNotChangeable, run_terminate, runs_claim, runs_complete
from aktina.jobs.models import JobProcess, JobRun
from aktina.jobs.processes import clusters_alive, process_register, queues_unserved
from aktina.jobs.rawtasks import DjangoQTask
from aktina.jobs.worker import Outcome, perform_claimed
from tests.jobs.sample_jobs import ExitJob, MarkJob, NoopJob, SleeperJob, marks_of
from tests.live import ROOT, process_env, wait_until

Status = JobRun.Status
FAST = {
    "JOBS_SWEEP_SECONDS": "1",
    "JOBS_LEASE_GRACE_SECONDS": "4",
    "Q_WORKERS": "2",
    "JOBS_HEARTBEAT_SECONDS": "0.5",
    "JOBS_PROCESS_STALE_SECONDS": "3",
}


def _claimed(*runs, holder_id: int = 1) -> list[JobRun]:
    claimed = runs_claim(queues=["default"], limit=100, holder_id=holder_id, worker="c")
    wanted = {r.pk for r in runs}
    return [c for c in claimed if c.pk in wanted]


# --- batched completions -------------------------------------------------------------------------
@pytest.mark.django_db
def test_a_stale_attempt_cannot_complete_a_run_through_the_batch(tmp_path):
    stale, fresh = MarkJob.dispatch(str(tmp_path), "s"), MarkJob.dispatch(str(tmp_path), "f")
    first_stale, first_fresh = _claimed(stale, fresh)
    assert perform_claimed(first_stale) == Outcome.COMPLETING
    assert perform_claimed(first_fresh) == Outcome.COMPLETING
    # Before the completer writes them, `stale` is handed back and claimed again (attempt 2),
    # and is still running when attempt 1's success arrives in the batch.
    JobRun.objects.filter(pk=stale.pk).update(status=Status.QUEUED)
    [second] = _claimed(stale, holder_id=2)
    assert second.attempts == 2

    done = runs_complete(runs=[first_stale, first_fresh])

    assert [r.pk for r in done] == [fresh.pk]
    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert (stale.status, stale.attempts, stale.holder_id) == (Status.RUNNING, 2, 2)
    assert (fresh.status, fresh.holder_id) == (Status.SUCCEEDED, None)
    assert fresh.finished_at >= fresh.started_at


@pytest.mark.django_db
def test_batched_completion_is_one_update_plus_each_runs_chain_and_batch_work(
    tmp_path, django_assert_num_queries
):
    lone = [NoopJob.dispatch(i) for i in range(5)]
    claimed = _claimed(*lone)
    for run in claimed:
        perform_claimed(run)
    # SQLite/PostgreSQL in a test transaction: the atomic block is a savepoint (2 statements).
    with django_assert_num_queries(3):
        assert len(runs_complete(runs=claimed)) == 5
    assert JobRun.objects.filter(status=Status.SUCCEEDED).count() == 5

    marks = str(tmp_path)
    chain(MarkJob(marks, "a"), MarkJob(marks, "b")).dispatch()
    b = batch([NoopJob(1), NoopJob(2)]).then(MarkJob(marks, "then")).dispatch()
    claimed = runs_claim(queues=["default"], limit=100, holder_id=1, worker="c")
    for run in claimed:
        perform_claimed(run)
    runs_complete(runs=claimed)
    # The chain's next link and the batch's `then` were dispatched in the same transaction.
    assert JobRun.objects.filter(job_name=MarkJob.job_name, status=Status.QUEUED).count() == 2
    b.refresh_from_db()
    assert (b.pending, b.failed) == (0, 0)
    assert b.finished_at is not None


@pytest.mark.django_db
def test_terminate_refuses_a_run_that_is_not_running_in_a_cluster():
    run = NoopJob.dispatch(1)
    with pytest.raises(RunNotChangeable, match="only a run running in a cluster"):
        run_terminate(run=run, by="alice")
    [claimed] = _claimed(run)
    assert run_terminate(run=claimed, by="alice").terminate_requested_by == "alice"


# --- operators -----------------------------------------------------------------------------------
@pytest.mark.django_db
def test_clusters_alive_and_unserved_queues(settings):
    settings.JOBS_DEDICATED_QUEUES = ["urgent"]
    NoopJob(1).on_queue("urgent").dispatch()
    NoopJob(2).dispatch()
    assert set(queues_unserved()) == {"urgent", "default"}
    row = process_register(kind="cluster", cluster="aktina", queues=["default"], boot="x")
    process_register(kind="worker", cluster="aktina", queues=["default"], boot="x", pid=99)
    [alive] = clusters_alive()
    assert (alive["name"], alive["queues"], alive["workers"]) == ("aktina", ["default"], 1)
    assert queues_unserved() == ["urgent"]
    JobProcess.objects.filter(pk=row.pk).update(last_seen=row.last_seen.replace(year=2000))
    assert clusters_alive() == []
    assert set(queues_unserved()) == {"urgent", "default"}


@pytest.mark.django_db
def test_jobs_clusters_command_lists_live_clusters_and_what_they_hold(capsys):
    row = process_register(kind="cluster", cluster="urgent", queues=["urgent"], boot="x")
    run = NoopJob(1).on_queue("urgent").dispatch()
    runs_claim(queues=["urgent"], limit=5, holder_id=row.pk, worker="w")
    call_command("jobs", "clusters")
    out = capsys.readouterr().out
    assert "urgent" in out.splitlines()[1]
    assert out.splitlines()[1].split()[-1] == "1"  # held runs
    del run


@pytest.mark.django_db
def test_jobs_stats_columns_line_up_for_long_queue_names(settings, capsys):
    settings.JOBS_QUEUES = {**settings.JOBS_QUEUES, "a-very-long-queue-name-indeed": {}}
    call_command("jobs", "stats")
    lines = capsys.readouterr().out.splitlines()
    starts = {line.index(line.split()[1]) + len(line.split()[1]) for line in lines}
    assert len(starts) == 1, lines  # the second column ends at the same place on every line


@pytest.mark.django_db(transaction=True)
def test_jobs_stats_into_a_closed_pipe_ends_quietly():
    """`jobs stats | head -1`: the reader is gone before the command writes (deterministic:
    the pipe's read end is closed before the command starts)."""
    read, write = os.pipe()
    os.close(read)
    try:
        proc = subprocess.run(
            [sys.executable, "manage.py", "jobs", "stats"],
            cwd=ROOT,
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            env=process_env(),
            timeout=60,
        )
    finally:
        os.close(write)
    assert "Traceback" not in proc.stderr, proc.stderr


def test_q_workers_zero_is_refused_in_one_line():
    proc = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "Q_WORKERS": "0"},
        timeout=60,
    )
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == [
        "configuration error: Q_WORKERS=0: a cluster needs at least 1 worker"
    ]


def test_queue_worker_counts_follow_the_queue_names_and_the_old_name_still_works():
    code = "from django.conf import settings as s; print(s.JOBS_QUEUES['ml-processing']['workers'])"
    out = {}
    for name in ("Q_WORKERS_ML_PROCESSING", "Q_WORKERS_ML"):
        env = {k: v for k, v in os.environ.items() if not k.startswith("Q_WORKERS")}
        out[name] = (
            subprocess.run(
                [sys.executable, "manage.py", "shell", "-c", code],
                cwd=ROOT,
                capture_output=True,
                text=True,
                env={**env, name: "5"},
                timeout=60,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
    assert out == {"Q_WORKERS_ML_PROCESSING": "5", "Q_WORKERS_ML": "5"}


# --- django-q2's internals that the sentinel reads ------------------------------------------------
def test_django_q2_internals_the_sentinel_relies_on_are_still_there():
    """Fails on a django-q2 upgrade that renames or reshapes what aktina.jobs.sentinel reads."""
    import inspect
    from multiprocessing import Value

    from django_q import cluster as q_cluster
    from django_q import worker as q_worker
    from django_q.queues import Queue

    queue = Queue()
    assert hasattr(queue, "_reader")
    assert hasattr(queue._reader, "recv_bytes")
    assert hasattr(queue, "_writer")
    assert hasattr(queue._writer, "send_bytes")
    assert queue.size.count.get_obj().value == 0
    sentinel = q_cluster.Sentinel
    for name in (
        "spawn_process",
        "spawn_worker",
        "spawn_monitor",
        "spawn_pusher",
        "spawn_cluster",
        "reincarnate",
        "guard",
        "stop",
    ):
        assert callable(getattr(sentinel, name)), name
    # spawn_process keeps the timer on the process and the process in the pool, for workers.
    source = inspect.getsource(sentinel.spawn_process)
    assert "p.timer = args[2]" in source
    assert "self.pool.append(p)" in source
    assert "worker, self.task_queue, self.result_queue, Value(" in inspect.getsource(
        sentinel.spawn_worker
    )
    # The worker's timer protocol: busy > 0, idle -1, recycling -2, timed out 0.
    worker_source = inspect.getsource(q_worker.worker)
    for line in ("timer.value = -1", "timer.value = -2", "timer.value = 0", "timer.get_lock()"):
        assert line in worker_source, line
    assert Value("f", -1).get_obj().value == -1
    assert "def start(self)" in inspect.getsource(sentinel)
    assert q_cluster.get_mp_context().get_start_method() == "fork"


# --- live clusters -------------------------------------------------------------------------------
def _ended(run) -> bool:
    return not JobRun.objects.filter(pk=run.pk, status__in=JobRun.ACTIVE).exists()


@pytest.mark.integration
@pytest.mark.timeout(240)
def test_raw_sys_exit_task_is_handed_back_within_a_guard_cycle(live_cluster):
    live_cluster(**FAST)
    with transaction.atomic():
        async_task("sys.exit", 4)
    run = JobRun.objects.get(job_name=DjangoQTask.job_name)
    wait_until(lambda: _ended(run), timeout=60, message="the sys.exit run to end")
    run.refresh_from_db()
    assert run.status == Status.FAILED
    assert "exited with code 4" in run.last_error


@pytest.mark.integration
@pytest.mark.timeout(240)
@pytest.mark.parametrize("how", ["sys", "os"])
def test_job_ending_its_worker_is_retried_then_fails_after_tries(live_cluster, tmp_path, how):
    live_cluster(**FAST)
    run = ExitJob.dispatch(str(tmp_path), how)
    wait_until(lambda: _ended(run), timeout=90, message="the exiting run to fail")
    run.refresh_from_db()
    assert (run.status, run.attempts) == (Status.FAILED, 2)
    assert len(marks_of(tmp_path, f"exit-{how}")) == 2
    assert "exited with code 4" in run.last_error
    assert "timeout" not in run.last_error
    wait_until(lambda: marks_of(tmp_path, f"exit-{how}-failed"), timeout=60, message="failed()")


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_dead_clusters_runs_are_rescued_by_a_live_cluster(live_cluster, tmp_path):
    first = live_cluster(**FAST)
    run = MarkJob.dispatch(str(tmp_path), "held", sleep=60)
    wait_until(lambda: marks_of(tmp_path, "held"), timeout=60, message="the run to start")
    time.sleep(1.5)  # a heartbeat records it as in a worker's hands
    os.killpg(first.proc.pid, signal.SIGKILL)  # the whole cluster: no hand-back of its own
    first.stop()
    run.refresh_from_db()
    assert run.status == Status.RUNNING
    live_cluster(**FAST)
    wait_until(lambda: len(marks_of(tmp_path, "held")) >= 2, timeout=60, message="a rescue")
    run.refresh_from_db()
    assert run.attempts == 2
    assert "stopped sending heartbeats" in run.attempt_log.get().error
    JobRun.objects.filter(pk=run.pk).update(status=Status.CANCELLED)


@pytest.mark.integration
@pytest.mark.timeout(240)
def test_terminate_stops_a_run_sleeping_600_s_within_seconds(live_cluster, tmp_path):
    live_cluster(**FAST)
    run = SleeperJob.dispatch(str(tmp_path))
    wait_until(lambda: marks_of(tmp_path, "sleeper"), timeout=60, message="the run to start")
    run.refresh_from_db()
    call_command("jobs", "terminate", str(run.pk))
    wait_until(lambda: _ended(run), timeout=15, message="the run to be terminated")
    run.refresh_from_db()
    assert run.status == Status.CANCELLED
    assert "Terminated by" in run.last_error
    assert marks_of(tmp_path, "sleeper-end") == []
    wait_until(lambda: marks_of(tmp_path, "sleeper-failed"), timeout=60, message="failed()")
    assert len(marks_of(tmp_path, "sleeper")) == 1  # not retried


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.integration
@pytest.mark.timeout(240)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_to_the_process_group_ends_every_process_within_10_s(live_cluster, tmp_path, signum):
    cluster = live_cluster(**FAST)
    busy = MarkJob.dispatch(str(tmp_path), "busy", sleep=60)
    with transaction.atomic():
        done = [NoopJob.dispatch(i) for i in range(20)]
    wait_until(lambda: marks_of(tmp_path, "busy"), timeout=60, message="the busy run to start")
    wait_until(lambda: all(_ended(r) for r in done), timeout=60, message="the quick runs")
    pgid = cluster.proc.pid
    os.killpg(pgid, signum)  # what systemd (KillMode=control-group) and Ctrl-C do
    deadline = time.monotonic() + 10
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.1)
        cluster.proc.poll()
    assert not _group_alive(pgid), subprocess.run(
        ["ps", "-o", "pid,stat,cmd", "-g", str(pgid)], capture_output=True, text=True
    ).stdout
    busy.refresh_from_db()
    # Handed back without counting an attempt, ready for the next cluster.
    assert (busy.status, busy.attempts, busy.holder_id) == (Status.QUEUED, 0, None)
    assert JobRun.objects.filter(pk__in=[r.pk for r in done], status=Status.SUCCEEDED).count() == 20
    assert not JobProcess.objects.exists()


@pytest.mark.integration
@pytest.mark.timeout(240)
def test_notify_wakes_an_idle_cluster_before_its_poll(live_cluster, tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    live_cluster(**FAST, Q_POLL="30")  # polling alone would take up to 30 s
    witness = MarkJob.dispatch(str(tmp_path), "witness")
    wait_until(lambda: _ended(witness), timeout=90, message="the cluster to be up")
    time.sleep(1)  # idle, waiting on LISTEN
    run = MarkJob.dispatch(str(tmp_path), "woken")
    with connection.cursor() as cursor:
        cursor.execute("NOTIFY aktina_jobs")
    wait_until(lambda: _ended(run), timeout=15, message="the NOTIFY to wake the cluster")


@pytest.mark.django_db
def test_health_and_metrics_report_live_clusters_and_unserved_queues(
    api, client, settings, make_user
):
    settings.JOBS_DEDICATED_QUEUES = ["urgent"]
    process_register(kind="cluster", cluster="aktina", queues=["default"], boot="x")
    NoopJob(1).on_queue("urgent").dispatch()
    body = api.get("/api/health/").json()
    assert [(c["name"], c["queues"]) for c in body["jobs"]["clusters"]] == [("aktina", ["default"])]
    assert body["jobs"]["unserved_queues"] == ["urgent"]
    assert body["status"] == "ok"

    client.force_login(make_user(roles.OPERATIONS))
    text = client.get("/metrics").content.decode()
    assert 'aktina_job_queue_live_clusters{queue="default"} 1.0' in text
    assert 'aktina_job_queue_live_clusters{queue="urgent"} 0.0' in text
    assert 'aktina_job_queue_unserved{queue="urgent"} 1.0' in text
    assert 'aktina_job_queue_unserved{queue="default"} 0.0' in text


def test_the_project_has_no_import_cycle_lazy_imports_included():
    """Every `import` counts, inside functions too: a lazy import that only hides a cycle is
    still a cycle (lifecycle -> worker -> lifecycle was one)."""
    import ast
    from pathlib import Path

    graph: dict[str, set[str]] = {}
    for path in (ROOT / "aktina").rglob("*.py"):
        if "migrations" in path.parts:
            continue
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        deps = graph.setdefault(name, set())
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("aktina"):
                deps.add(node.module)
                deps.update(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name.startswith("aktina"))
    edges = {m: {d for d in deps if d in graph and d != m} for m, deps in graph.items()}
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        for nxt in edges[node]:
            if nxt in path:
                cycles.append(" -> ".join([*path[path.index(nxt) :], nxt]))
            elif nxt not in done:
                visit(nxt, [*path, nxt])
        done.add(node)

    done: set[str] = set()
    for module in sorted(edges):
        if module not in done:
            visit(module, [module])
    assert cycles == []
    del Path


@pytest.mark.integration
@pytest.mark.timeout(240)
def test_ctrl_c_to_make_runs_group_ends_it_cleanly_within_10_s(live_cluster, tmp_path):
    """scripts/run.sh (what `make run` runs) with the web server and a cluster: SIGINT to the
    whole group, as a terminal's Ctrl-C sends it. Every process ends, with status 0 (make would
    print `Error 1` for anything else)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(tmp_path / "run.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        ["./scripts/run.sh"],
        cwd=ROOT,
        env=process_env(PY=sys.executable, PORT=str(port), **FAST),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        witness = NoopJob.dispatch(1)
        wait_until(lambda: _ended(witness), timeout=120, message="the cluster to be up")
        os.killpg(proc.pid, signal.SIGINT)
        deadline = time.monotonic() + 10
        while _group_alive(proc.pid) and time.monotonic() < deadline:
            proc.poll()
            time.sleep(0.1)
        assert not _group_alive(proc.pid), (tmp_path / "run.log").read_text()[-2000:]
        assert proc.wait(5) == 0, (tmp_path / "run.log").read_text()[-2000:]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


@pytest.mark.integration
@pytest.mark.timeout(240)
def test_the_api_lists_a_live_cluster_and_terminates_its_run(live_cluster, tmp_path, make_user):
    """The console's side against a real cluster: GET /api/jobs/clusters/ shows the run in a
    worker's hands; POST .../terminate/ marks it and the cluster ends it cancelled, by whom."""
    from rest_framework.test import APIClient

    from aktina.core import roles

    operator = make_user(roles.OPERATIONS)
    api = APIClient()
    api.force_authenticate(operator)
    live_cluster(**FAST)
    run = SleeperJob.dispatch(str(tmp_path))
    wait_until(lambda: marks_of(tmp_path, "sleeper"), timeout=60, message="the run to start")

    def in_worker():
        clusters = api.get("/api/jobs/clusters/").json()["live"]
        return any(h["id"] == run.pk and h["in_worker"] for c in clusters for h in c["held_runs"])

    wait_until(in_worker, timeout=15, message="the clusters list to show the run in a worker")
    response = api.post(f"/api/jobs/runs/{run.pk}/terminate/")
    assert response.status_code == 200, response.content
    assert response.json()["terminate_requested_by"] == operator.get_username()
    wait_until(lambda: _ended(run), timeout=15, message="the run to be terminated")
    run.refresh_from_db()
    assert run.status == Status.CANCELLED
    assert f"Terminated by {operator.get_username()}" in run.last_error
    assert api.post(f"/api/jobs/runs/{run.pk}/terminate/").status_code == 409
