"""The cluster's completer: writes its workers' successes in batches.

It takes the place of django-q2's monitor in every cluster (aktina.jobs.sentinel): django-q2's
workers put each finished message on the cluster's result queue, with the run the worker
executed in it; a successful run waits here until 100 have gathered or the oldest has waited
25 ms, then all are written by one fenced UPDATE (aktina.jobs.lifecycle.runs_complete). On the
sentinel's STOP, at shutdown, it writes what it holds and ends.

Here rather than in a thread of each worker: one process sees every worker's results, so a
batch gathers the whole cluster's successes (a worker alone would flush batches of a few), a
worker stays one thread that a timeout kill stops cleanly, and the worker's slot in shared
memory says exactly which run a dead worker held. What a killed completer held is handed back
by the pool reset that follows (those runs run again: at-least-once, as for a kill between
`handle()` and the write).
"""

from __future__ import annotations

import logging
import queue as queues
import signal
import time
from multiprocessing.process import current_process

from django.db import DatabaseError, close_old_connections

from aktina.jobs.counters import counters_add
from aktina.jobs.lifecycle import runs_complete
from aktina.jobs.worker import Outcome

logger = logging.getLogger("aktina.jobs")

FLUSH_RUNS = 100
FLUSH_SECONDS = 0.025


def completer(result_queue, broker=None) -> None:
    """Target of the cluster's result-queue process (in place of django-q2's `monitor`)."""
    # A group SIGTERM (systemd) must not lose the batch: the sentinel ends this process with
    # STOP after its workers, and kills it only if it does not end in time.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import setproctitle

        setproctitle.setproctitle(f"qcluster {current_process().name} completer")
    except ImportError:
        pass
    pending = []
    oldest = 0.0
    while True:
        wait = None if not pending else max(0.0, oldest + FLUSH_SECONDS - time.monotonic())
        try:
            task = result_queue.get(timeout=wait)
        except queues.Empty:
            pending = _flush(pending)
            continue
        if task == "STOP":
            break
        run = _succeeded_run(task)
        if run is None:
            continue
        if not pending:
            oldest = time.monotonic()
        pending.append(run)
        if len(pending) >= FLUSH_RUNS:
            pending = _flush(pending)
    while pending:
        pending = _flush(pending)


def _succeeded_run(task: dict):
    if not task.get("success") or task.get("result") != Outcome.COMPLETING:
        if not task.get("success"):
            # perform raised (it never does for a job's own failure): a bug or a timeout
            # inside django-q2's handler. The guard loop hands the run back.
            logger.error("cluster message %s failed: %s", task.get("name"), task.get("result"))
        return None
    return task["args"][0]


def _flush(runs: list) -> list:
    """Write `runs`; returns what is left to write (all of it after a database error)."""
    if not runs:
        return runs
    try:
        done = runs_complete(runs=runs)
    except DatabaseError:
        logger.warning("completer: writing %d successes failed; retrying", len(runs), exc_info=True)
        close_old_connections()
        time.sleep(0.5)
        return runs
    if len(done) < len(runs):
        stale = len(runs) - len(done)
        logger.warning("completer: %d success(es) of attempts that no longer held the run", stale)
        counters_add(group="completer", counts={"stale": stale})
    return []
