"""Jobs used by the job-layer tests; workers import them through JOBS_IMPORT.

Effects are lines appended to files in a directory the test owns, so that a test can see what
happened in another process (O_APPEND writes of one short line do not interleave).
"""

import os
import signal
import time
from datetime import timedelta
from pathlib import Path

from aktina.jobs import Job, PermanentError, RateLimited, WithoutOverlapping


def mark(marks: str, name: str, text: str = "") -> None:
    with open(Path(marks) / name, "a") as f:
        f.write(f"{time.time():.3f} {os.getpid()} {text}\n")


def marks_of(marks, name: str) -> list[list[str]]:
    path = Path(marks) / name
    if not path.exists():
        return []
    return [line.split(" ", 2) for line in path.read_text().splitlines()]


class NoopJob(Job):
    queue = "default"

    def __init__(self, n: int = 0):
        self.n = n

    def handle(self):
        return None


class MarkJob(Job):
    queue = "default"
    tries = 3

    def __init__(self, marks: str, name: str, sleep: float = 0):
        self.marks, self.name, self.sleep = marks, name, sleep

    def handle(self):
        mark(self.marks, self.name, f"start attempt={self.attempt}")
        time.sleep(self.sleep)
        mark(self.marks, self.name, "end")


class FlakyJob(Job):
    """Fails its first `failures` attempts."""

    tries = 4
    backoff = [1, 2, 4]

    def __init__(self, marks: str, failures: int):
        self.marks, self.failures = marks, failures

    def handle(self):
        mark(self.marks, "flaky", f"attempt={self.attempt}")
        if self.attempt <= self.failures:
            raise RuntimeError(f"flaky failure on attempt {self.attempt}")

    def failed(self, exc):
        mark(self.marks, "flaky-failed", str(exc))


class BrokenJob(Job):
    tries = 5

    def __init__(self, marks: str):
        self.marks = marks

    def handle(self):
        raise PermanentError("the order is malformed")

    def failed(self, exc):
        mark(self.marks, "broken-failed", str(exc))


class PoisonJob(Job):
    """Kills its own worker process every time, like an OOM kill or a segfault would."""

    tries = 2
    timeout = 5

    def __init__(self, marks: str):
        self.marks = marks

    def handle(self):
        mark(self.marks, "poison", f"attempt={self.attempt}")
        os.kill(os.getpid(), signal.SIGKILL)

    def failed(self, exc):
        mark(self.marks, "poison-failed", str(exc))


class SlowJob(Job):
    tries = 2
    timeout = 3

    def __init__(self, marks: str, seconds: float):
        self.marks, self.seconds = marks, seconds

    def handle(self):
        mark(self.marks, "slow", f"attempt={self.attempt}")
        time.sleep(self.seconds)
        mark(self.marks, "slow-end")

    def failed(self, exc):
        mark(self.marks, "slow-failed", str(exc))


class UniqueJob(Job):
    unique_for = timedelta(hours=1)

    def __init__(self, key: str):
        self.key = key

    def unique_id(self):
        return f"unique-{self.key}"

    def handle(self):
        return None


class CarrierJob(Job):
    timeout = 30

    def __init__(self, marks: str, n: int = 0):
        self.marks, self.n = marks, n

    def middleware(self):
        return [RateLimited("test-carrier", 10, per=60)]

    def handle(self):
        mark(self.marks, "carrier", f"{self.n} {self.rate_limited_at:.3f}")


class ExclusiveJob(Job):
    def __init__(self, marks: str, sleep: float = 0.3):
        self.marks, self.sleep = marks, sleep

    def middleware(self):
        return [WithoutOverlapping("exclusive", release_after=0.2)]

    def handle(self):
        mark(self.marks, "exclusive", "start")
        time.sleep(self.sleep)
        mark(self.marks, "exclusive", "end")


class QuickMarkJob(MarkJob):
    """MarkJob with a short lease (timeout 5 s), for tests that kill clusters mid-run."""

    timeout = 5


class FailWithJob(Job):
    """Fails at once with the exception class named by `kind` (for retry-by-filter tests)."""

    tries = 1

    def __init__(self, kind: str, note: str = ""):
        self.kind, self.note = kind, note

    def handle(self):
        raise {"value": ValueError, "lookup": LookupError}[self.kind](f"{self.kind} {self.note}")


class TaggedJob(Job):
    """A job with a model argument that is not the first one, and tags of its own."""

    def __init__(self, label: str, order=None, customer=None):
        self.label, self.order, self.customer = label, order, customer

    def tags(self):
        return [f"label:{self.label}"]

    def handle(self):
        return None


class ExitJob(Job):
    """Ends its own worker process without returning: `sys.exit(code)` or `os._exit(code)`."""

    tries = 2
    timeout = 60

    def __init__(self, marks: str, how: str, code: int = 4):
        self.marks, self.how, self.code = marks, how, code

    def handle(self):
        mark(self.marks, f"exit-{self.how}", f"attempt={self.attempt}")
        if self.how == "os":
            os._exit(self.code)
        raise SystemExit(self.code)

    def failed(self, exc):
        mark(self.marks, f"exit-{self.how}-failed", str(exc))


class SleeperJob(Job):
    """Sleeps for `seconds` (600 by default): a run an operator has to stop."""

    timeout = 900

    def __init__(self, marks: str, seconds: float = 600):
        self.marks, self.seconds = marks, seconds

    def handle(self):
        mark(self.marks, "sleeper", f"attempt={self.attempt}")
        time.sleep(self.seconds)
        mark(self.marks, "sleeper-end")

    def failed(self, exc):
        mark(self.marks, "sleeper-failed", str(exc))
