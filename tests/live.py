"""Real processes for integration tests: `manage.py qcluster` (and runserver) against the test
database, so a test watches the same ledger the workers write."""

from __future__ import annotations

import os
import time
from pathlib import Path

from django.conf import settings
from django.db import connection

from bench.common import Process, database_url, qcluster_args

ROOT = Path(__file__).resolve().parents[1]


def test_database_url() -> str:
    return database_url(settings.DATABASES["default"])


def process_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": test_database_url(),
            "DJANGO_SECRET_KEY": settings.SECRET_KEY,
            "DJANGO_SETTINGS_MODULE": "tests.live_settings",
            "JOBS_IMPORT": "tests.jobs.sample_jobs",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


class LiveCluster(Process):
    """One `manage.py qcluster` process group; stopped (or killed) at the end of the test."""

    def __init__(self, log_dir: Path, name: str | None = None, **env: str):
        self.name = name
        super().__init__(
            qcluster_args(name),
            process_env(**env),
            log_path=log_dir / f"qcluster-{name or 'default'}-{time.time_ns()}.log",
        )

    def start(self) -> LiveCluster:
        # The test's writes must be visible to another process before it starts working.
        connection.close()
        return super().start()

    def worker_pids(self) -> list[int]:
        """Worker processes: the grandchildren of qcluster (qcluster -> sentinel -> workers)."""
        return self.grandchildren()

    def log(self) -> str:
        return self.log_text()


def wait_until(predicate, timeout: float = 60, interval: float = 0.2, message: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for: {message or predicate}")
