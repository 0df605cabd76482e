"""Benchmark plumbing: a throwaway database, Django set up against it, a real qcluster."""

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


def setup_django(database_url: str | None, name: str, **env: str) -> dict[str, str]:
    """Point this process at a fresh benchmark database and return the env for children."""
    if database_url is None:
        path = Path(tempfile.mkdtemp(prefix=f"aktina-{name}-")) / "bench.sqlite3"
        database_url = f"sqlite:///{path}"
    elif database_url.startswith("postgres"):
        _recreate_postgres(database_url)
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
    sys.path.insert(0, str(ROOT))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    call_command("createcachetable", verbosity=0)
    return dict(os.environ)


def _recreate_postgres(url: str) -> None:
    import psycopg

    base, dbname = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{dbname}"')


def process_grandchildren(pid: int) -> list[int]:
    """qcluster -> sentinel -> workers, pusher, monitor: the processes two levels below `pid`
    in its process group."""
    out = subprocess.run(
        ["ps", "-o", "pid=,ppid=", "-g", str(pid)], capture_output=True, text=True, check=False
    ).stdout.split()
    pairs = list(zip(map(int, out[::2]), map(int, out[1::2]), strict=True))
    children = {child for child, parent in pairs if parent == pid}
    return [child for child, parent in pairs if parent in children]


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


class Cluster:
    def __init__(self, env: dict[str, str], name: str | None = None):
        args = [sys.executable, "manage.py", "qcluster"] + (["--name", name] if name else [])
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - open while the cluster runs
            prefix="qcluster-", suffix=".log", delete=False
        )
        self.proc = subprocess.Popen(
            args,
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(20)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)


def wait_for(predicate, timeout: float, interval: float = 0.05) -> float:
    started = time.perf_counter()
    while not predicate():
        if time.perf_counter() - started > timeout:
            raise TimeoutError("benchmark did not finish in time")
        time.sleep(interval)
    return time.perf_counter() - started


def percentile(values, p):
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def median(values):
    import statistics

    return statistics.median(values)
