"""The peers' no-op task and how bench/peers.py enqueues it; runs in the bench venv
(requirements-bench.txt), never imported by the app.

    python bench/peer_apps.py enqueue procrastinate|celery N

Configuration comes from the environment bench/peers.py sets: PEER_DATABASE_URL (procrastinate),
PEER_REDIS_URL and PEER_CELERY_QUEUE (Celery).
"""

from __future__ import annotations

import os
import sys


def procrastinate_app():
    import procrastinate

    app = procrastinate.App(
        connector=procrastinate.PsycopgConnector(conninfo=os.environ["PEER_DATABASE_URL"])
    )

    @app.task(name="noop", queue="bench")
    def noop(n: int) -> None:
        return None

    return app


def celery_app():
    from celery import Celery

    app = Celery("bench_peers", broker=os.environ["PEER_REDIS_URL"])
    app.conf.update(
        # The configuration whose guarantees come closest to the ledger's: a message is
        # acknowledged after the task ran, and re-queued when its worker dies.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        task_default_queue=os.environ.get("PEER_CELERY_QUEUE", "h_bench_celery"),
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
    )

    @app.task(name="noop")
    def noop(n: int) -> None:
        return None

    return app


# What the worker command lines load (`procrastinate --app bench.peer_apps.procrastinate`,
# `celery -A bench.peer_apps:celery`), only when their package is installed.
if os.environ.get("PEER_SYSTEM") == "procrastinate":
    procrastinate = procrastinate_app()
elif os.environ.get("PEER_SYSTEM") == "celery":
    celery = celery_app()


def enqueue(system: str, n: int) -> None:
    if system == "procrastinate":
        app = procrastinate_app()
        with app.open():
            task = app.tasks["noop"]
            for start in range(0, n, 500):
                task.batch_defer(*({"n": i} for i in range(start, min(n, start + 500))))
    elif system == "celery":
        app = celery_app()
        task = app.tasks["noop"]
        with app.producer_or_acquire() as producer:
            for i in range(n):
                task.apply_async((i,), producer=producer)
    else:
        raise SystemExit(f"unknown peer {system!r}")


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "enqueue":
        raise SystemExit("usage: peer_apps.py enqueue procrastinate|celery N")
    enqueue(sys.argv[2], int(sys.argv[3]))
