"""django-q2's sentinel, made to survive a child killed outright (OOM killer, `kill -9`).

django-q2's workers, monitor and pusher talk through `multiprocessing` queues whose locks live
in shared memory. A process killed while it holds one of them (an idle worker blocks inside
`task_queue.get()` holding the queue's read lock; the monitor does the same on the result
queue; the guard takes each worker's timer lock) leaves the lock held forever, and the cluster
stops working while every process stays alive. We measured it in the chaos run: both clusters
wedged within a minute of killing random children.

So a child killed where it may hold a queue lock (an idle worker, the monitor, the pusher), or a
pool that has stopped taking work for STALL_SECONDS, resets the pool: every child is killed, the
queues, timers and events are created afresh, and a new pool starts; runs in flight on the other
workers are retried like the killed one. Runs that the killed processes held are
handed back to the ledger at once (their leases expire now, which the sweeper counts as an
attempt) instead of waiting out `timeout + grace`. Messages that sat in the old queues are read
straight from their pipes (every reader and writer is dead by then, so their locks no longer
matter) and put into the new ones; a message lost with a killed process's buffer is a run
still queued in the ledger, delivered again once its `delivered_until` passes.

The guard loop only writes rows: a run whose last lease it expires gets its failed() hook and
notifications from a job in a worker (aktina.jobs.jobs.RunFailedHooksJob), so a hung mail server
cannot stop it from enforcing timeouts.

A worker killed while busy with a task (the usual OOM kill), one that exits normally (recycled
after `recycle` tasks) and one stopped by django-q2 for a timeout hold no queue lock: they are
replaced the ordinary way, and a killed one's run is handed back at once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from datetime import timedelta
from multiprocessing import Event
from multiprocessing.reduction import ForkingPickler
from queue import Full

from django import db
from django_q import cluster as q_cluster
from django_q.conf import Conf
from django_q.queues import Queue
from django_q.status import Stat

from aktina.jobs.counters import counters_add

logger = logging.getLogger("aktina.jobs")


# django-q2's worker timer: > 0 busy (seconds left), -1 idle, -2 recycling (exiting), 0 timed out.
IDLE, RECYCLING = -1, -2
# A non-empty task queue that no idle worker takes for this long is wedged; so is a worker that
# has been exiting for this long (blocked flushing results into a pipe nobody reads).
STALL_SECONDS = 15


def _killed(process) -> bool:
    """Ended by a signal (SIGKILL, SIGSEGV, ...) rather than by returning or sys.exit."""
    return not process.is_alive() and process.exitcode is not None and process.exitcode < 0


def _timer(process) -> float:
    # The raw value, without the lock: a dead process may hold it.
    return process.timer.get_obj().value


def _size(queue) -> int:
    return queue.size.count.get_obj().value


class ResilientSentinel(q_cluster.Sentinel):
    # Seconds the pool has looked stuck, counted in guard cycles.
    _stalled_for: float = 0

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
        while True:
            casualties = self._deaths_that_may_hold_a_lock()
            if casualties:
                self.reset(casualties, why="killed by a signal")
            elif self._stalled(cycle):
                self.reset([], why="stalled")
            else:
                self._check_workers(cycle)
            counter += cycle
            if counter >= 30 and Conf.SCHEDULER:
                counter = 0
                q_cluster.scheduler(broker=self.broker)
            Stat(self).save()
            if self.stop_event.wait(cycle):
                break
        self.stop()

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
        """django-q2's own worker check, but never blocking on a lock a dead process holds."""
        for p in list(self.pool):
            lock = p.timer.get_lock()
            if not lock.acquire(timeout=max(cycle, 1.0)):
                # Held by a worker that died between our last look and now.
                self.reset([p], why="died holding its timer lock")
                return
            try:
                if not p.is_alive() or p.timer.value == 0:
                    if _killed(p):
                        # Busy when killed (OOM, kill -9): its run goes back to the ledger now.
                        runs_hand_back(worker_pids=[p.pid])
                    self.reincarnate(p)
                    continue
                if p.timer.value > 0:
                    p.timer.value -= cycle
            finally:
                lock.release()
        if not self.monitor.is_alive():
            self.reincarnate(self.monitor)
        if not self.pusher.is_alive():
            self.reincarnate(self.pusher)

    def reset(self, casualties: list, *, why: str) -> None:
        children = [p for p in [*self.pool, self.monitor, self.pusher] if p is not None]
        pids = [p.pid for p in children]
        logger.critical(
            "cluster %s: %s %s; resetting its %d processes and queues",
            Conf.CLUSTER_NAME,
            ", ".join(f"pid {p.pid} (exit {p.exitcode})" for p in casualties) or "the pool",
            why,
            len(children),
        )
        self._stalled_for = 0
        for p in children:
            if p.is_alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, signal.SIGKILL)
        for p in children:
            p.join(timeout=10)
        counters_add(group="sentinel", counts={"pool_resets": 1}, label=Conf.CLUSTER_NAME)
        runs_hand_back(worker_pids=pids)
        # The old queues may have a lock held by a dead process: only their pipes are read.
        tasks, results = _drain(self.task_queue), _drain(self.result_queue)
        self.task_queue = Queue(maxsize=Conf.QUEUE_LIMIT) if Conf.QUEUE_LIMIT else Queue()
        self.result_queue = Queue()
        self.event_out = Event()
        self.reincarnations += 1
        self.spawn_cluster()
        _refill(self.task_queue, tasks, "task")
        _refill(self.result_queue, results, "result")


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


def _refill(queue, items: list, kind: str) -> None:
    for n, item in enumerate(items):
        try:
            queue.put(item, timeout=5)
        except Full:
            # Still queued in the ledger: delivered again once `delivered_until` passes.
            logger.warning(
                "cluster %s: %d %s message(s) left out", Conf.CLUSTER_NAME, len(items) - n, kind
            )
            return
    if items:
        logger.info(
            "cluster %s: moved %d %s message(s) to the new queue",
            Conf.CLUSTER_NAME,
            len(items),
            kind,
        )


def runs_hand_back(*, worker_pids: list[int]) -> int:
    """Expire the leases of runs the given (dead) processes of this host were running."""
    from aktina.jobs.clock import db_now
    from aktina.jobs.models import JobRun
    from aktina.jobs.sweeper import runs_expire_leases
    from aktina.jobs.worker import worker_id

    # worker_id carries this cluster's boot id: another host's live runs never match.
    workers = [worker_id(pid) for pid in worker_pids]
    try:
        expired = JobRun.objects.filter(status=JobRun.Status.RUNNING, worker__in=workers).update(
            lease_expires_at=db_now() - timedelta(microseconds=1)
        )
        if expired:
            counters_add(
                group="sentinel", counts={"runs_handed_back": expired}, label=Conf.CLUSTER_NAME
            )
            runs_expire_leases()
        return expired
    except Exception:
        # The sweeper expires the leases later anyway; a reset must not fail on the database.
        logger.exception("could not hand back the runs of killed workers")
        return 0
    finally:
        db.connections.close_all()


def install() -> None:
    """Make django-q2's Cluster start our sentinel (called by `manage.py qcluster`)."""
    q_cluster.Sentinel = ResilientSentinel
