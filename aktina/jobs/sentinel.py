"""django-q2's sentinel, made the ledger's cluster: it registers and heartbeats the cluster in
the process table, hands back the run of a worker that ends any way but returning, rescues the
runs of dead clusters, terminates runs on request, sweeps, and shuts down within seconds.

Each worker shows the run it executes in a shared-memory cell (`Value("q")`, set by
aktina.jobs.worker.perform_claimed); a worker found dead, or stopped by django-q2 for a timeout,
with a run in its cell has that run handed back at once, counted as an attempt (`sys.exit`,
`os._exit`, a segfault or `kill -9` inside a job all end this way, within one guard cycle).

It also survives a child killed outright (OOM killer, `kill -9`).

django-q2's workers, monitor and pusher talk through `multiprocessing` queues whose locks live
in shared memory. A process killed while it holds one of them (an idle worker blocks inside
`task_queue.get()` holding the queue's read lock; the monitor does the same on the result
queue; the guard takes each worker's timer lock) leaves the lock held forever, and the cluster
stops working while every process stays alive. We measured it in the chaos run: both clusters
wedged within a minute of killing random children.

So a child killed where it may hold a queue lock (an idle worker, the monitor, the pusher), or a
pool that has stopped taking work for STALL_SECONDS, resets the pool: every child is killed, the
queues, timers and events are created afresh, and a new pool starts. Runs in the killed
workers' hands are handed back counted as an attempt; successes that sat in the result queue
are read straight from its pipe (every reader and writer is dead by then, so its lock no
longer matters) and written; every other run the cluster held (claimed, never started) goes
back to the queue without counting an attempt.

The guard loop only writes rows: a run whose last lease it expires gets its failed() hook and
notifications from a job in a worker (aktina.jobs.jobs.RunFailedHooksJob), so a hung mail server
cannot stop it from enforcing timeouts.

A worker killed while busy with a task (the usual OOM kill), one that exits normally (recycled
after `recycle` tasks) and one stopped by django-q2 for a timeout hold no queue lock: they are
replaced the ordinary way, and the run in their cell is handed back at once.

Shutdown (SIGTERM to the sentinel, or the qcluster parent setting the stop event; systemd
signals the whole group): the pusher stops, busy workers get JOBS_SHUTDOWN_GRACE_SECONDS to
finish, then every worker is killed, the completer writes what it holds, and every run still
held goes back to the queue without counting an attempt.

Reads django-q2 internals (`process.timer`, `queue._reader`, `queue.size`, `Sentinel.pool`,
`spawn_process`, ...): tests/jobs/test_runtime.py pins them against the installed django-q2.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from datetime import timedelta
from multiprocessing import Event, Value
from multiprocessing.reduction import ForkingPickler

from django import db
from django.conf import settings
from django_q import cluster as q_cluster
from django_q.conf import Conf
from django_q.queues import Queue
from django_q.status import Stat
from django_q.worker import worker as q_worker

from aktina.jobs import worker as job_worker
from aktina.jobs.clock import db_now
from aktina.jobs.completer import completer
from aktina.jobs.counters import counters_add
from aktina.jobs.lifecycle import run_hand_back, run_terminated, runs_complete
from aktina.jobs.models import JobProcess, JobRun
from aktina.jobs.processes import (
    process_forget,
    process_register,
    processes_heartbeat,
    runs_rescue,
)
from aktina.jobs.queues import queues_served_by
from aktina.jobs.sweeper import runs_expire_leases, sweep_safely
from aktina.jobs.worker import Outcome, boot_id, worker_id

logger = logging.getLogger("aktina.jobs")
Status = JobRun.Status


# django-q2's worker timer: > 0 busy (seconds left), -1 idle, -2 recycling (exiting), 0 timed out.
IDLE, RECYCLING = -1, -2
# A non-empty task queue that no idle worker takes for this long is wedged; so is a worker that
# has been exiting for this long (blocked flushing results into a pipe nobody reads).
STALL_SECONDS = 15
# Seconds the completer gets to write what it holds at shutdown.
COMPLETER_STOP_SECONDS = 3


def _killed(process) -> bool:
    """Ended by a signal (SIGKILL, SIGSEGV, ...) rather than by returning or sys.exit."""
    return not process.is_alive() and process.exitcode is not None and process.exitcode < 0


def _timer(process) -> float:
    # The raw value, without the lock: a dead process may hold it.
    return process.timer.get_obj().value


def _cell(process) -> int:
    """The run a worker shows in its shared-memory cell (0: none)."""
    cell = getattr(process, "run_cell", None)
    return cell.value if cell is not None else 0


def _size(queue) -> int:
    return queue.size.count.get_obj().value


class ResilientSentinel(q_cluster.Sentinel):
    # Seconds the pool has looked stuck, counted in guard cycles.
    _stalled_for: float = 0
    process_id: int | None = None
    _next_beat: float = 0
    _next_sweep: float = 0
    _terminated = False

    # --- start ----------------------------------------------------------------------------------
    def start(self):
        # SIGTERM to this process (systemd signals the whole group) stops the cluster cleanly;
        # SIGINT is the parent's to relay (django-q2 ignores it here already).
        # A flag, not stop_event.set(): the handler may interrupt stop_event.wait() in the guard
        # loop, which holds the event's lock (set() would wait for it for ever).
        signal.signal(signal.SIGTERM, self._terminate)
        self._register()
        db.connections.close_all()  # nothing shared with the children forked next
        super().start()

    def _terminate(self, signum, frame) -> None:
        self._terminated = True

    def _stopping(self) -> bool:
        return self._terminated or self.stop_event.is_set()

    def _register(self) -> None:
        row = process_register(
            kind=JobProcess.Kind.CLUSTER,
            cluster=Conf.CLUSTER_NAME,
            queues=queues_served_by(Conf.CLUSTER_NAME),
            boot=boot_id(),
        )
        self.process_id = row.pk
        self._workers: dict[int, int] = {}  # worker pid -> its process row
        # The pusher (forked after this) claims as this row.
        self.broker.holder_id = row.pk
        self.broker.worker = worker_id()

    def spawn_process(self, target, *args):
        # Children start with SIGTERM's default action (a worker stopped by django-q2 for a
        # timeout gets SIGTERM); this process's handler would stop the whole cluster.
        previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
        try:
            return super().spawn_process(target, *args)
        finally:
            signal.signal(signal.SIGTERM, previous)

    def spawn_worker(self):
        cell = Value("q", 0, lock=False)
        # Inherited by the worker forked next (fork start method: django-q2 asks for it).
        job_worker.current_run = cell
        try:
            self.spawn_process(
                q_worker, self.task_queue, self.result_queue, Value("f", -1), self.timeout
            )
        finally:
            job_worker.current_run = None
        self.pool[-1].run_cell = cell

    def spawn_monitor(self):
        # The completer writes successes in batches (aktina.jobs.completer).
        return self.spawn_process(completer, self.result_queue, self.broker)

    # --- the guard loop -------------------------------------------------------------------------
    def guard(self):
        logger.info(
            "%s guarding cluster %s [%s]",
            q_cluster.current_process().name,
            q_cluster.humanize(self.cluster_id.hex),
            self.queue_name(),
        )
        self.start_event.set()
        Stat(self).save()
        counter = 0
        cycle = Conf.GUARD_CYCLE
        while not self._stopping():
            casualties = self._deaths_that_may_hold_a_lock()
            if casualties:
                self.reset(casualties, why="killed by a signal")
            elif self._stalled(cycle):
                self.reset([], why="stalled")
            else:
                self._check_workers(cycle)
            self._beat()
            counter += cycle
            if counter >= 30 and Conf.SCHEDULER:
                counter = 0
                q_cluster.scheduler(broker=self.broker)
            Stat(self).save()
            if self.stop_event.wait(cycle) or self._terminated:
                break
        self.stop()

    def _beat(self) -> None:
        """Every JOBS_HEARTBEAT_SECONDS: heartbeat, rescue dead clusters' runs, terminate runs
        asked to stop; every JOBS_SWEEP_SECONDS: the sweep (one sweeper per cluster)."""
        now = time.monotonic()
        if now < self._next_beat:
            return
        self._next_beat = now + settings.JOBS_HEARTBEAT_SECONDS
        try:
            self._workers_sync()
            running = [c for c in (_cell(p) for p in self.pool) if c]
            if not processes_heartbeat(cluster_id=self.process_id, boot=boot_id(), running=running):
                # Another cluster took this one for dead and handed its runs back: whatever
                # this pool holds is no longer its own. Start over under a new row.
                logger.critical("cluster %s was taken for dead; restarting", Conf.CLUSTER_NAME)
                self._register()
                self.reset([], why="taken for dead by another cluster", hand_back=False)
                return
            runs_rescue()
            self._terminations()
            if now >= self._next_sweep and settings.JOBS_SWEEP_SECONDS > 0:
                self._next_sweep = now + settings.JOBS_SWEEP_SECONDS
                sweep_safely()
        except Exception:
            logger.exception("cluster %s: heartbeat failed", Conf.CLUSTER_NAME)
            db.connections.close_all()

    def _workers_sync(self) -> None:
        """One `worker` row per live worker process of this cluster."""
        pids = {p.pid for p in self.pool if p.is_alive()}
        gone = [row for pid, row in self._workers.items() if pid not in pids]
        if gone:
            process_forget(ids=gone)
        self._workers = {pid: row for pid, row in self._workers.items() if pid in pids}
        for pid in pids - set(self._workers):
            row = process_register(
                kind=JobProcess.Kind.WORKER,
                cluster=Conf.CLUSTER_NAME,
                queues=queues_served_by(Conf.CLUSTER_NAME),
                boot=boot_id(),
                pid=pid,
            )
            self._workers[pid] = row.pk

    def _terminations(self) -> None:
        """Runs of this cluster an operator asked to stop: kill the worker running each (as a
        timeout does), end the run cancelled."""
        asked = list(
            JobRun.objects.filter(holder_id=self.process_id, status=Status.RUNNING).exclude(
                terminate_requested_by=""
            )
        )
        for run in asked:
            for p in list(self.pool):
                if _cell(p) == run.pk:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(p.pid, signal.SIGKILL)
                    p.join(timeout=5)
                    p.run_cell.value = 0  # handled here, not as a death
            run_terminated(run=run, now=db_now())
            logger.warning("run %s terminated by %s", run.pk, run.terminate_requested_by)

    def _deaths_that_may_hold_a_lock(self) -> list:
        """Killed while idle (inside task_queue.get), or the monitor or pusher killed. A worker
        killed while busy with a task holds no queue lock: it is replaced the ordinary way."""
        dead = [p for p in (self.monitor, self.pusher) if p is not None and _killed(p)]
        return dead + [p for p in self.pool if _killed(p) and _timer(p) <= IDLE]

    def _stalled(self, cycle: float) -> bool:
        alive = [p for p in self.pool if p.is_alive()]
        stuck = (
            alive and all(_timer(p) == IDLE for p in alive) and _size(self.task_queue) > 0
        ) or (any(_timer(p) == RECYCLING for p in alive))
        self._stalled_for = self._stalled_for + cycle if stuck else 0
        return self._stalled_for >= STALL_SECONDS

    def _check_workers(self, cycle: float) -> None:
        """django-q2's own worker check, but never blocking on a lock a dead process holds, and
        handing back the run of a worker that died or timed out."""
        lost = None
        for p in list(self.pool):
            lock = p.timer.get_lock()
            if not lock.acquire(timeout=max(cycle, 1.0)):
                # Held by a worker that died between our last look and now.
                self.reset([p], why="died holding its timer lock")
                return
            try:
                if not p.is_alive() or p.timer.value == 0:
                    run_id = _cell(p)
                    if run_id:
                        self._hand_back_cell(p, run_id)
                    elif p.timer.value > 0:
                        # Died busy outside a run: after taking a message and before the run
                        # started, or after it ended and before its result was on its way. Which
                        # run it held is unknown, so every run this cluster holds goes back.
                        lost = p
                        break
                    self.reincarnate(p)
                    continue
                if p.timer.value > 0:
                    p.timer.value -= cycle
            finally:
                lock.release()
        if lost is not None:
            self.reset([lost], why="died between taking a message and sending its result")
            return
        if not self.monitor.is_alive():
            self.reincarnate(self.monitor)
        if not self.pusher.is_alive():
            self.reincarnate(self.pusher)

    def _hand_back_cell(self, p, run_id: int) -> None:
        if _timer(p) == 0:
            # django-q2 stopped it for its timeout (it exits by itself after its timeout handler,
            # or reincarnate() terminates it): make sure it is gone before the run goes back.
            why = "did not finish within its {timeout}s timeout; its worker was stopped"
            if p.is_alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, signal.SIGKILL)
                p.join(timeout=5)
        elif p.exitcode is not None and p.exitcode < 0:
            name = signal.Signals(-p.exitcode).name if -p.exitcode in signal.valid_signals() else ""
            why = f"its worker (pid {p.pid}) was killed by signal {-p.exitcode} {name}".rstrip()
        else:
            why = f"its worker (pid {p.pid}) exited with code {p.exitcode} while running it"
        held_runs_hand_back(run_ids=[run_id], holder_id=self.process_id, counted=True, why=why)
        p.run_cell.value = 0

    # --- reset and stop -------------------------------------------------------------------------
    def reset(self, casualties: list, *, why: str, hand_back: bool = True) -> None:
        children = [p for p in [*self.pool, self.monitor, self.pusher] if p is not None]
        logger.critical(
            "cluster %s: %s %s; resetting its %d processes and queues",
            Conf.CLUSTER_NAME,
            ", ".join(f"pid {p.pid} (exit {p.exitcode})" for p in casualties) or "the pool",
            why,
            len(children),
        )
        self._stalled_for = 0
        _kill_all(children)
        counters_add(group="sentinel", counts={"pool_resets": 1}, label=Conf.CLUSTER_NAME)
        busy = [c for c in (_cell(p) for p in self.pool) if c]
        # The old queues may have a lock held by a dead process: only their pipes are read.
        _drain(self.task_queue)  # claimed, never started: handed back below, uncounted
        successes = [
            r["args"][0]
            for r in _drain(self.result_queue)
            if r.get("success") and r.get("result") == Outcome.COMPLETING
        ]
        if hand_back:
            _complete_safely(successes)
            held_runs_hand_back(
                run_ids=busy, holder_id=self.process_id, counted=True, why=f"its cluster {why}"
            )
            held_runs_hand_back(run_ids=None, holder_id=self.process_id, counted=False, why=why)
        self.task_queue = Queue(maxsize=Conf.QUEUE_LIMIT) if Conf.QUEUE_LIMIT else Queue()
        self.result_queue = Queue()
        self.event_out = Event()
        self.reincarnations += 1
        db.connections.close_all()
        self.spawn_cluster()

    def stop(self):
        """Shut down within seconds: stop claiming, let busy workers finish for a moment, stop
        them, write the completer's successes, hand back the rest; forget this cluster."""
        logger.info("cluster %s stopping", Conf.CLUSTER_NAME)
        self.event_out.set()
        _wait_until(lambda: not self.pusher.is_alive(), 1 + float(Conf.POLL))
        _kill_all([self.pusher])
        grace = settings.JOBS_SHUTDOWN_GRACE_SECONDS
        _wait_until(lambda: not any(p.is_alive() and _timer(p) > 0 for p in self.pool), grace)
        busy = [c for c in (_cell(p) for p in self.pool) if c]
        _kill_all(self.pool)
        _drain(self.task_queue)
        # Straight into the pipe: every other writer is dead, and a lock one of them held
        # would block the queue's own feeder thread (and this process's exit) for ever.
        if self.result_queue._sem.acquire(False):  # what put() takes, so get() may release it
            self.result_queue._writer.send_bytes(ForkingPickler.dumps("STOP"))
        _wait_until(lambda: not self.monitor.is_alive(), COMPLETER_STOP_SECONDS)
        if self.monitor.is_alive():
            logger.warning("cluster %s: the completer did not stop in time", Conf.CLUSTER_NAME)
            _kill_all([self.monitor])
            _complete_safely(
                [
                    r["args"][0]
                    for r in _drain(self.result_queue)
                    if r.get("success") and r.get("result") == Outcome.COMPLETING
                ]
            )
        # Stopped by us, not by the job: no attempt is counted.
        held_runs_hand_back(run_ids=busy, holder_id=self.process_id, counted=False, why="shutdown")
        held_runs_hand_back(run_ids=None, holder_id=self.process_id, counted=False, why="shutdown")
        with contextlib.suppress(Exception):
            process_forget(ids=[self.process_id, *self._workers.values()])
        self.pool = []
        for queue in (self.task_queue, self.result_queue):
            queue.cancel_join_thread()  # never wait at exit on a pipe a dead reader left full
        Stat(self).save()
        db.connections.close_all()
        logger.info("cluster %s stopped", Conf.CLUSTER_NAME)


def _wait_until(done, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not done() and time.monotonic() < deadline:
        time.sleep(0.05)


def _kill_all(processes) -> None:
    for p in processes:
        if p is not None and p.is_alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(p.pid, signal.SIGKILL)
    for p in processes:
        if p is not None:
            p.join(timeout=10)


def _complete_safely(runs: list) -> None:
    try:
        runs_complete(runs=runs)
    except Exception:
        # Not written: the runs are handed back with the rest and run again (at-least-once).
        logger.exception("could not write %d successes of a reset pool", len(runs))


def _drain(queue) -> list:
    """Whole messages still in a queue's pipe, read without its (possibly orphaned) lock."""
    items = []
    try:
        while queue._reader.poll(0):
            item = ForkingPickler.loads(queue._reader.recv_bytes())
            if item != "STOP":
                items.append(item)
    except Exception:  # noqa: BLE001 - a message torn by the kill ends the drain
        logger.warning("cluster %s: a torn message ended the queue drain", Conf.CLUSTER_NAME)
    return items


def held_runs_hand_back(
    *, run_ids: list[int] | None, holder_id: int, counted: bool, why: str
) -> int:
    """Hand back runs this cluster (`holder_id`) held: `run_ids`, or all of them (None).
    `counted`: they were in a worker's hands (an attempt); else they never started."""
    if run_ids is not None and not run_ids:
        return 0
    try:
        held = JobRun.objects.filter(holder_id=holder_id, status=Status.RUNNING)
        if run_ids is not None:
            held = held.filter(pk__in=run_ids)
        now = db_now()
        runs = list(held.order_by("id"))
        for run in runs:
            text = why.format(timeout=run.timeout)
            reason = f"Attempt {run.attempts}: {text}." if counted else text
            run_hand_back(run=run, reason=reason, counted=counted, now=now)
        if runs and counted:
            counters_add(
                group="sentinel", counts={"runs_handed_back": len(runs)}, label=Conf.CLUSTER_NAME
            )
        return len(runs)
    except Exception:
        # The heartbeat of a live cluster keeps these runs; a reset must not fail on the
        # database. If this cluster dies meanwhile, another hands them back.
        logger.exception("could not hand back %s runs", "some" if run_ids else "held")
        return 0
    finally:
        db.connections.close_all()


def runs_hand_back(*, worker_pids: list[int]) -> int:
    """Expire the leases of runs that dead processes of this host claimed outside any cluster
    (`perform`): their worker id names them, with this cluster's boot id, so another host's
    live runs never match."""
    workers = [worker_id(pid) for pid in worker_pids]
    expired = JobRun.objects.filter(
        status=Status.RUNNING, holder_id__isnull=True, worker__in=workers
    ).update(lease_expires_at=db_now() - timedelta(microseconds=1))
    if expired:
        runs_expire_leases()
    return expired


def install() -> None:
    """Make django-q2's Cluster start our sentinel (called by `manage.py qcluster`)."""
    q_cluster.Sentinel = ResilientSentinel
