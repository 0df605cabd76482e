"""Running management commands in tests: in process for their output, as a subprocess for
their exit codes and one-line errors."""

import subprocess
import sys
from io import StringIO
from pathlib import Path

from django.core.management import call_command

ROOT = Path(__file__).resolve().parents[1]


def run(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def manage(*args) -> subprocess.CompletedProcess:
    """The command as an operator runs it, for exit codes and one-line errors."""
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, capture_output=True, text=True
    )
