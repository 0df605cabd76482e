"""Benchmark plumbing, shared with the integration tests (tests/live.py): a throwaway
database, Django set up against it, child processes (a real qcluster) started and stopped by
their own id, and the one percentile function the dashboard uses too."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aktina.core.stats import percentile  # noqa: E402 - the dashboard's, also here

__all__ = [
    "Cluster",
    "Process",
    "bench_customers",
    "database_url",
    "emit",
    "median",
    "percentile",
    "postgres_recreate",
    "process_grandchildren",
    "setup_django",
    "wait_for",
]


def setup_django(database_url: str | None, name: str, **env: str) -> dict[str, str]:
    """Point this process at a fresh benchmark database and return the env for children."""
    if database_url is None:
        path = Path(tempfile.mkdtemp(prefix=f"aktina-{name}-")) / "bench.sqlite3"
        database_url = f"sqlite:///{path}"
    elif database_url.startswith("postgres"):
        postgres_recreate(database_url)
    os.environ.update(
        {
            "DATABASE_URL": database_url,
            "DJANGO_SETTINGS_MODULE": "aktina.settings",
            "DJANGO_SECRET_KEY": os.environ.get(
                "DJANGO_SECRET_KEY", "bench-only-secret-key-0123456789"
            ),
            **env,
        }
    )
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    call_command("createcachetable", verbosity=0)
    return dict(os.environ)


def postgres_recreate(url: str) -> None:
    """Drop and create the database `url` names (connecting to `postgres` on its server)."""
    import psycopg

    base, dbname = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{dbname}"')


def database_url(db: dict) -> str:
    """The URL of a Django `DATABASES` entry, for a child process's `DATABASE_URL`."""
    if db["ENGINE"].endswith("sqlite3"):
        name = db["NAME"]
        if name in ("", ":memory:") or "mode=memory" in str(name):
            raise RuntimeError("a child process needs a file SQLite database")
        return f"sqlite:///{name}"
    user = db.get("USER") or ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    return f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def process_grandchildren(pid: int) -> list[int]:
    """qcluster -> sentinel -> workers, pusher, monitor: the processes two levels below `pid`
    in its process group."""
    out = subprocess.run(
        ["ps", "-o", "pid=,ppid=", "-g", str(pid)], capture_output=True, text=True, check=False
    ).stdout.split()
    pairs = list(zip(map(int, out[::2]), map(int, out[1::2]), strict=True))
    children = {child for child, parent in pairs if parent == pid}
    return [child for child, parent in pairs if parent in children]


class Process:
    """A child in a session (and process group) of its own, its output in a log file.

    `stop()` sends SIGTERM to the child, waits, then SIGKILLs the group it leads (every process
    it started and nothing else), so no worker is left behind."""

    def __init__(
        self,
        args: list[str],
        env: dict[str, str],
        *,
        log_path: Path | None = None,
        prefix: str = "process-",
    ):
        self.args = args
        self.env = env
        if log_path is None:
            fd, name = tempfile.mkstemp(prefix=prefix, suffix=".log")
            os.close(fd)
            log_path = Path(name)
        self.log_path = Path(log_path)
        self._log = None
        self.proc: subprocess.Popen | None = None

    def start(self) -> Process:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            self.args,
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def grandchildren(self) -> list[int]:
        return process_grandchildren(self.proc.pid) if self.proc else []

    def kill_all(self) -> None:
        """SIGKILL the whole group at once (a host losing power)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self, timeout: float = 20) -> None:
        if self.proc is None or self._log.closed:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # leave no child of it behind
        self.proc.wait()
        self._log.close()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


def qcluster_args(name: str | None = None) -> list[str]:
    return [sys.executable, "manage.py", "qcluster"] + (["--name", name] if name else [])


class Cluster(Process):
    """One `manage.py qcluster` process group, started at once (the benchmarks' clusters)."""

    def __init__(self, env: dict[str, str], name: str | None = None):
        super().__init__(qcluster_args(name), env, prefix="qcluster-")
        self.start()


def bench_customers(count: int, *, prefix: str, password: str) -> list[str]:
    """`count` customer accounts (created or reset); returns their usernames."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from aktina.core import roles

    group = Group.objects.get(name=roles.CUSTOMER)
    names = []
    for k in range(count):
        user, _ = get_user_model().objects.get_or_create(
            username=f"{prefix}-customer-{k}", defaults={"email": f"{prefix}{k}@aktina.local"}
        )
        user.set_password(password)
        user.save()
        user.groups.add(group)
        names.append(user.username)
    return names


def wait_for(predicate, timeout: float, interval: float = 0.05) -> float:
    started = time.perf_counter()
    while not predicate():
        if time.perf_counter() - started > timeout:
            raise TimeoutError("benchmark did not finish in time")
        time.sleep(interval)
    return time.perf_counter() - started


def emit(result: dict, keys) -> None:
    """Print a benchmark's last line, its JSON, after checking it carries exactly the keys the
    script declares (`JSON_KEYS...` constants, which `make bench-check` holds the README and
    docs/benchmarks.md to): a renamed or dropped figure fails here and there, not in a reader."""
    import json

    if set(result) != set(keys):
        raise RuntimeError(
            f"JSON keys drifted from the declaration: extra {sorted(set(result) - set(keys))}, "
            f"missing {sorted(set(keys) - set(result))}"
        )
    print(json.dumps(result), flush=True)


def median(values):
    import statistics

    return statistics.median(values)
