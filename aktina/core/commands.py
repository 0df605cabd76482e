"""Management-command plumbing: bad arguments end in one readable line and a non-zero exit."""

from __future__ import annotations

import datetime as dt
import re
import sys

from django.core.management.base import BaseCommand, CommandError, CommandParser


class OneLineParser(CommandParser):
    def error(self, message):
        raise CommandError(f"{self.prog}: {message}")


class OneLineErrorsCommand(BaseCommand):
    def create_parser(self, prog_name, subcommand, **kwargs):
        kwargs.setdefault("formatter_class", None)
        kwargs.pop("formatter_class")
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.__class__ = OneLineParser
        return parser

    def run_from_argv(self, argv):
        try:
            super().run_from_argv(argv)
        except CommandError as exc:
            # Argument errors escape BaseCommand's own handler (parsing happens before it).
            sys.stderr.write(f"error: {exc}\n")
            sys.exit(2)


_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> dt.timedelta:
    """'90s', '15m', '12h', '7d', '2w' -> timedelta; anything else is a CommandError."""
    match = _DURATION.match(text.strip())
    if not match:
        raise CommandError(f"{text!r} is not a duration like 30m, 12h or 7d")
    try:
        return dt.timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    except OverflowError:
        raise CommandError(f"{text!r} is too long: it reaches back before year 1") from None


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1, else a CommandError naming the value."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise CommandError(f"{text!r} is not a whole number of 1 or more")
    return value
