"""Real processes for integration tests: `manage.py qcluster` (and runserver) against the test
database, so a test watches the same ledger the workers write."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.db import connection

from bench.common import process_grandchildren

ROOT = Path(__file__).resolve().parents[1]


def test_database_url() -> str:
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        name = db["NAME"]
        if name in ("", ":memory:") or "mode=memory" in str(name):
            raise RuntimeError("integration tests need a file SQLite test database")
        return f"sqlite:///{name}"
    user = db.get("USER") or ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    return f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


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


class LiveCluster:
    """One `manage.py qcluster` process group; stopped (or killed) at the end of the test."""

    def __init__(self, log_dir: Path, name: str | None = None, **env: str):
        self.name = name
        self.log_path = log_dir / f"qcluster-{name or 'default'}-{time.time_ns()}.log"
        self.env = process_env(**env)
        self.proc: subprocess.Popen | None = None

    def start(self) -> LiveCluster:
        # The test's writes must be visible to another process before it starts working.
        connection.close()
        args = [sys.executable, "manage.py", "qcluster"]
        if self.name:
            args += ["--name", self.name]
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            args,
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def worker_pids(self) -> list[int]:
        """Worker processes: the grandchildren of qcluster (qcluster -> sentinel -> workers)."""
        return process_grandchildren(self.proc.pid)

    def stop(self, timeout: float = 20) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # leave no worker behind
        self.proc.wait()
        self._log.close()
        self.proc = None

    def log(self) -> str:
        return self.log_path.read_text()


def wait_until(predicate, timeout: float = 60, interval: float = 0.2, message: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for: {message or predicate}")
