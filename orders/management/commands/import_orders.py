"""`manage.py import_orders FILE.csv [--skip-invalid] [--create-products]`: load order history."""

from __future__ import annotations

import time

from django.core.management.base import CommandError
from django.utils import timezone

from aktina.core.commands import OneLineErrorsCommand
from orders.history_csv import REQUIRED_COLUMNS, BadFile, parse_order_history
from orders.history_import import HistoryImportError, order_history_import, skus_unknown

MAX_REPORTED = 1000


class Command(OneLineErrorsCommand):
    help = (
        f"Import order history from a CSV file with the header {','.join(REQUIRED_COLUMNS)}: "
        "one completed order per customer and day; missing customers (customer-<id>) are "
        "created; an unknown sku stops the import unless --create-products (created "
        "inactive). Lines imported before are skipped. Any bad row (also a date in the "
        "future) stops the import unless --skip-invalid."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="CSV file (UTF-8).")
        parser.add_argument(
            "--skip-invalid",
            action="store_true",
            help="Import the good rows and report the bad ones (default: import nothing).",
        )
        parser.add_argument(
            "--create-products",
            action="store_true",
            help="Create skus missing from the catalogue, inactive (default: refuse the file).",
        )

    def handle(
        self,
        *args,
        file: str,
        skip_invalid: bool = False,
        create_products: bool = False,
        **options,
    ):
        started = time.perf_counter()
        try:
            with open(file, encoding="utf-8-sig", newline="") as stream:
                good, bad = parse_order_history(
                    stream, zone=timezone.get_current_timezone(), now=timezone.now()
                )
        except OSError as exc:
            raise CommandError(f"cannot read {file}: {exc.strerror or exc}") from exc
        except UnicodeDecodeError as exc:
            raise CommandError(f"{file} is not UTF-8 text (byte {exc.start})") from exc
        except BadFile as exc:
            raise CommandError(f"{file}: {exc}; nothing imported") from exc
        if not create_products:
            # Reported with the other bad rows, so the first run names every row that
            # --skip-invalid will leave out.
            unknown = skus_unknown({line.sku for line in good})
            bad = sorted(
                bad
                + [
                    (line.line, f"sku {line.sku!r} is not in the catalogue (add it, or "
                     "use --create-products)")
                    for line in good
                    if line.sku in unknown
                ]
            )  # fmt: skip
            good = [line for line in good if line.sku not in unknown]
        for line, reason in bad[:MAX_REPORTED]:
            self.stderr.write(f"{file}:{line}: {reason}")
        if len(bad) > MAX_REPORTED:
            self.stderr.write(f"... and {len(bad) - MAX_REPORTED} more invalid rows")
        if bad and not skip_invalid:
            raise CommandError(
                f"{len(bad)} invalid row(s) in {file}; nothing imported. Fix them, or import "
                f"the {len(good)} valid row(s) with --skip-invalid."
            )
        try:
            counts = order_history_import(lines=good, create_products=create_products)
        except HistoryImportError as exc:
            raise CommandError(f"{file}: {exc} Nothing imported.") from exc
        seconds = time.perf_counter() - started
        skipped = []
        if counts["already_imported"]:
            skipped.append(f"{counts['already_imported']:,} lines imported before")
        if bad:
            skipped.append(f"{len(bad):,} invalid rows")
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported {counts['lines']:,} lines as {counts['orders']:,} completed orders "
                f"({counts['customers_created']:,} new customers, "
                f"{counts['products_created']:,} new inactive products) in {seconds:.1f} s"
                + (f"; skipped {' and '.join(skipped)}." if skipped else ".")
            )
        )
        if counts["orders"]:
            self.stdout.write(
                "Bulk inserts send no signals: run `manage.py rebuild_analytics` to count them "
                "in the analytics and `manage.py refresh_ml` for segments and forecasts."
            )
