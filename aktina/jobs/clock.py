"""The database's clock: the one "now" every host agrees on for claims, leases and expiry.

Two hosts whose clocks disagree by more than the lease grace would otherwise disagree on
whether a lease has run out, and a second worker could claim a run that is still running.
"""

from __future__ import annotations

import datetime as dt

from django.db import connection
from django.utils import timezone

# SQLite keeps datetimes as "YYYY-MM-DD HH:MM:SS[.ffffff]" text in UTC and compares them as
# text. Its clock ticks in milliseconds while Django writes microseconds, so a bare
# "HH:MM:SS.mmm" sorts before a run dispatched in that same millisecond ("...mmm456"): the run
# would look not yet due. Now is therefore the millisecond's last microsecond, "...mmm999" —
# never before any timestamp Python wrote earlier, at most 1 ms ahead of the true time.
_SQLITE_NOW = "(strftime('%%Y-%%m-%%d %%H:%%M:%%f', 'now') || '999')"


def now_sql() -> str:
    """SQL for the database's current time (each statement's own, not the transaction's)."""
    if connection.vendor == "postgresql":
        return "clock_timestamp()"
    return _SQLITE_NOW


def later_sql() -> str:
    """SQL for the database's current time plus a number of seconds given as one parameter."""
    if connection.vendor == "postgresql":
        return "(clock_timestamp() + make_interval(secs => %s))"
    return "strftime('%%Y-%%m-%%d %%H:%%M:%%f', 'now', %s)"


def later_param(seconds: float):
    """The parameter `later_sql` expects for `seconds`."""
    if connection.vendor == "postgresql":
        return float(seconds)
    return f"{float(seconds):+.3f} seconds"


def db_now() -> dt.datetime:
    """The database's current time, as an aware datetime."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {now_sql()}".replace("%%", "%"))
        value = cursor.fetchone()[0]
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if timezone.is_naive(value):
        value = timezone.make_aware(value, dt.UTC)
    return value
