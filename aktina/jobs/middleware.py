"""Job middleware: checks that run before `handle()` and may put the run back for later.

Both keep their state in the database, so every process on every host sees the same limits.
"""

from __future__ import annotations

import datetime as dt
import random

from django.db import IntegrityError, transaction
from django.utils import timezone

from aktina.jobs.models import JobLock, RateLimitWindow


class RateLimited:
    """At most `limit` starts in any `per`-second window, across every worker and host.

    A sliding log (the last `limit` start times) rather than fixed windows: fixed windows let
    twice the limit through around a boundary. Over the limit, the run is released until the
    oldest start leaves the window; no attempt is spent.
    """

    def __init__(self, key: str, limit: int, per: float = 60):
        if limit < 1 or per <= 0:
            raise ValueError("RateLimited needs limit >= 1 and per > 0")
        self.key, self.limit, self.per = f"rate:{key}", limit, per

    def acquire(self, job) -> float | None:
        RateLimitWindow.objects.get_or_create(key=self.key)
        with transaction.atomic():
            window = RateLimitWindow.objects.select_for_update().get(key=self.key)
            now = timezone.now().timestamp()
            starts = [t for t in window.starts if t > now - self.per]
            if len(starts) >= self.limit:
                # Wake just after the oldest start leaves the window; jitter avoids a stampede.
                return max(0.0, min(starts) + self.per - now) + random.uniform(0.05, 1.0)
            window.starts = sorted([*starts, now])[-self.limit :]
            window.save(update_fields=["starts"])
        # The start as the limiter counted it (a job's own clock reading comes later, by however
        # long the host took to get from here to handle()).
        job.rate_limited_at = now
        return None

    def release(self, job) -> None:
        return None  # a start stays counted for its whole window


class WithoutOverlapping:
    """One run at a time per key; others are released and try again `release_after` later."""

    def __init__(self, key: str, release_after: float = 5):
        self.key, self.release_after = f"lock:{key}", release_after

    def acquire(self, job) -> float | None:
        now = timezone.now()
        expires_at = now + dt.timedelta(seconds=job.run.timeout + 60)
        JobLock.objects.filter(key=self.key, expires_at__lte=now).delete()
        try:
            with transaction.atomic():
                JobLock.objects.create(key=self.key, run=job.run, expires_at=expires_at)
        except IntegrityError:
            return self.release_after
        return None

    def release(self, job) -> None:
        JobLock.objects.filter(key=self.key, run=job.run).delete()
