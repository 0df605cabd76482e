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
