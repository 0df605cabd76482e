"""Management commands given malformed arguments: one clear line on stderr, a non-zero exit,
no traceback, nothing written. Run as real processes against their own SQLite file.

(CSV import has its own tests with the ML app.)
"""

import hashlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

CASES = [
    # (arguments, a fragment of the one stderr line)
    ("seed_demo --orders -1", "--orders must be 0 or more"),
    ("seed_demo --orders many", "invalid int value: 'many'"),
    ("seed_demo --password short", "at least 8 characters"),
    ("jobs retry abc", "invalid int value: 'abc'"),
    ("jobs retry 999999", "no run with id 999999"),
    ("jobs flush --older-than 7x", "'7x' is not a duration"),
    ("jobs flush --older-than 99999999999d", "'99999999999d' is too long"),
    ("qcluster --name nope", "cluster 'nope' serves no queue"),
    ("jobs list --limit -1", "'-1' is not a whole number of 1 or more"),
    ("jobs frobnicate", "invalid choice: 'frobnicate'"),
    ("rebuild_analytics --days 7", "unrecognized arguments: --days 7"),
]


def manage(args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args.split()],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def database(tmp_path_factory):
    path = tmp_path_factory.mktemp("commands") / "db.sqlite3"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{path}"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    result = manage("migrate --verbosity 0", env)
    assert result.returncode == 0, result.stderr
    return path, env


def digest(path: Path) -> str:
    with sqlite3.connect(path) as db:
        return hashlib.sha256("\n".join(db.iterdump()).encode()).hexdigest()


@pytest.mark.parametrize(("args", "message"), CASES, ids=[c[0] for c in CASES])
def test_bad_arguments_fail_with_one_clear_line_and_write_nothing(database, args, message):
    path, env = database
    before = digest(path)
    result = manage(args, env)
    assert result.returncode != 0
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0]
    assert "Traceback" not in result.stderr
    assert digest(path) == before


ENV_CASES = [
    # (variable, value, a fragment of the one stderr line)
    ("Q_WORKERS", "abc", "Q_WORKERS='abc' is not a valid int"),
    ("Q_POLL", "abc", "Q_POLL='abc' is not a valid float"),
    ("ORDER_AUTO_APPROVE_LIMIT", "abc", "ORDER_AUTO_APPROVE_LIMIT='abc' is not a valid Decimal"),
    ("DATABASE_URL", "bogus", "DATABASE_URL='bogus' is not a database URL"),
    ("JOBS_DEDICATED_QUEUES", "nope", "JOBS_DEDICATED_QUEUES names unknown queues"),
]


@pytest.mark.parametrize(("var", "value", "message"), ENV_CASES, ids=[c[0] for c in ENV_CASES])
def test_a_bad_environment_variable_is_one_line_naming_it(database, var, value, message):
    _path, env = database
    result = manage("jobs stats", {**env, var: value})
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0]
