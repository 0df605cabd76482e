"""The chaos run in small: 100 orders through the API, workers killed, clusters restarted.

Runs `bench/chaos.py` as a subprocess against its own fresh database (`<test database>_chaos` on the
test database's PostgreSQL server) and Redis, so the test database is untouched.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("CHAOS_REDIS_URL", "redis://127.0.0.1:6379/14")


def chaos_database_url() -> str:
    db = settings.DATABASES["default"]
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host, port = db.get("HOST") or "127.0.0.1", db.get("PORT") or 5432
    # Named after the test database, so runs of the suite against other databases never share it.
    return f"postgres://{user}{password}@{host}:{port}/{db['NAME']}_chaos"


def redis_reachable() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


def test_hundred_orders_survive_killed_workers_and_restarted_clusters():
    if connection.vendor != "postgresql":
        pytest.skip("the chaos run needs PostgreSQL (DATABASE_URL=postgres://...) and Redis")
    if not redis_reachable():
        pytest.skip(f"the chaos run needs Redis at {REDIS_URL}")
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    completed = subprocess.run(
        [
            sys.executable,
            "bench/chaos.py",
            "--orders=100",
            "--kill-every=1",
            "--restarts=2",
            "--drain-timeout=100",
            f"--database-url={chaos_database_url()}",
            f"--redis-url={REDIS_URL}",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=260,
        check=False,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output[-4000:]
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result["orders"] == 100, output[-4000:]
    assert result["kills"] >= 3, output[-4000:]
    assert (result["lost_runs"], result["duplicate_effects"], result["invariant_violations"]) == (
        0,
        0,
        0,
    ), output[-4000:]
    # Counted where a duplicate would escape: shipments the recording carrier created, e-mails
    # handed to the recording mail backend; and every failure accounted for.
    assert result["unexpected_failed"] == 0, output[-4000:]
    assert (result["duplicate_shipments"], result["duplicate_notifications"]) == (0, 0), output[
        -4000:
    ]
    assert result["metrics_match_rebuild"] is True, output[-4000:]
    # At-least-once calls: a repeat only where a kill cut a call short; never fewer than one.
    assert 1.0 <= result["carrier_calls_per_shipped_order"] <= 1.5, output[-4000:]
    assert 1.0 <= result["emails_per_notification"] <= 1.5, output[-4000:]
