"""The core app's `@task` functions (Django's Tasks API on the ledger)."""

from __future__ import annotations

from aktina.core.health import health_report
from aktina.jobs.tasks_api import task


@task(queue_name="default", timeout=30)
def health_probe() -> dict:
    """The health checks as a worker sees them. Enqueue it from `manage.py shell` to see that
    a cluster is up and reaches the database, the cache and the ledger: its result comes back
    SUCCESSFUL with the report, or stays READY while no worker serves `default`."""
    return health_report()
