"""Settings for processes started by integration tests: the project's, plus test-only hooks.

AKTINA_TEST_CLOCK_SKEW_SECONDS moves `timezone.now()` of every process started with these
settings, as a host whose clock is wrong would see it.
"""

import datetime
import os

from django.utils import timezone

from aktina.settings import *  # noqa: F403

_skew = float(os.environ.get("AKTINA_TEST_CLOCK_SKEW_SECONDS") or 0)
if _skew:
    _real_now = timezone.now

    def _skewed_now() -> datetime.datetime:
        return _real_now() + datetime.timedelta(seconds=_skew)

    timezone.now = _skewed_now
