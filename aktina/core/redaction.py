"""Secrets never leave the process as text: log records and operator output pass `redact`.

A secret is a configured one (SECRET_KEY, database, email and Redis passwords) or the password
part of any `scheme://user:password@host` URL, whatever put it in an exception's message.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit

from django.conf import settings

MASK = "***"
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.\-]*://[^:/@\s]*):[^@/\s]+@", re.IGNORECASE)
# Shorter values would mask ordinary words; no real secret is that short.
_MIN_SECRET_LENGTH = 6


def configured_secrets() -> list[str]:
    values = [getattr(settings, "SECRET_KEY", ""), getattr(settings, "EMAIL_HOST_PASSWORD", "")]
    values += [db.get("PASSWORD") or "" for db in settings.DATABASES.values()]
    redis_url = getattr(settings, "REDIS_URL", "")
    if redis_url:
        values.append(urlsplit(redis_url).password or "")
    found = {str(v) for v in values if v and len(str(v)) >= _MIN_SECRET_LENGTH}
    return sorted(found, key=len, reverse=True)


def redact(text: str) -> str:
    text = _URL_PASSWORD.sub(rf"\g<head>:{MASK}@", text)
    for secret in configured_secrets():
        text = text.replace(secret, MASK)
    return text


class RedactSecrets(logging.Filter):
    """Logging filter (see LOGGING in settings): masks secrets in the message and traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True
