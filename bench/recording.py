"""Recording stand-ins for the outside world, for the chaos run: every e-mail handed to the mail
backend is counted in Redis, so several processes (web workers, cluster workers killed at any
moment) add to one tally that bench/chaos.py reads at the end.

- The carrier is the tests' recording carrier, `tests.recording.RecordingCarrier` (a SQLite file
  at RECORDING_CARRIER_PATH, outside our database); `tally()` includes its counts.
- `RecordingEmailBackend` counts each message, with its recipients and subject.

Configured by CHAOS_RECORD_REDIS_URL and CHAOS_RECORD_PREFIX (bench/chaos.py sets both).
"""

from __future__ import annotations

import json
import os
from functools import cache

from django.core.mail.backends.base import BaseEmailBackend

from tests import recording


@cache
def _redis():
    import redis

    return redis.Redis.from_url(os.environ["CHAOS_RECORD_REDIS_URL"])


def key(name: str) -> str:
    return f"{os.environ['CHAOS_RECORD_PREFIX']}:{name}"


class RecordingEmailBackend(BaseEmailBackend):
    def send_messages(self, email_messages) -> int:
        pipe = _redis().pipeline()
        for message in email_messages:
            pipe.rpush(key("emails"), json.dumps({"to": message.to, "subject": message.subject}))
        pipe.execute()
        return len(email_messages)


def tally() -> dict:
    """What was recorded: carrier calls, shipments and voided shipments per order id, and the
    e-mails."""
    emails = [json.loads(m) for m in _redis().lrange(key("emails"), 0, -1)]
    return {**recording.tally(), "emails": emails}
