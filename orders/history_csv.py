"""Parsing and checking an order-history CSV (`manage.py import_orders`); no database here.

The writes are in ``orders.history_import``.

The file has a header naming ``customer_id, date, sku, quantity, unit_price`` (any order,
extra columns ignored). Every bad row is reported with its line number and every reason it
is bad, so one pass over the file finds all the problems.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

REQUIRED_COLUMNS = ("customer_id", "date", "sku", "quantity", "unit_price")
CUSTOMER_ID = re.compile(r"^[\w.@+-]{1,140}$")
SKU_MAX = 64
QUANTITY_MAX = 2_147_483_647
PRICE_MAX = Decimal("9999999999.99")
# Order.total_amount holds 14 digits, 2 after the point.
ORDER_TOTAL_MAX = Decimal("999999999999.99")
# PostgreSQL stores offsets within +-15:59 only.
MAX_UTC_OFFSET = dt.timedelta(hours=15, minutes=59)
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# A date without a time is placed at local noon, so no zone conversion moves it to another day.
DATE_ONLY_TIME = dt.time(12, 0)


class BadFile(Exception):
    """The file as a whole cannot be imported (no header, wrong header, not CSV text)."""


@dataclass(frozen=True)
class HistoryLine:
    line: int
    customer_id: str
    ordered_at: dt.datetime  # aware
    sku: str
    quantity: int
    unit_price: Decimal


def parse_order_history(
    lines: Iterable[str], *, zone: dt.tzinfo, now: dt.datetime
) -> tuple[list[HistoryLine], list[tuple[int, str]]]:
    """Good rows and (line number, reason) for each bad one. Raises BadFile for the file.

    ``zone`` interprets dates and times without an offset (the site's time zone). History
    cannot be in the future: a row after ``now`` (aware) is bad; a date without a time on
    today's date is placed at ``now`` if that is before noon.
    """
    reader = csv.reader(lines)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise BadFile(f"line {reader.line_num}: {exc}") from exc
    if header is None:
        raise BadFile(f"the file is empty; expected a header: {','.join(REQUIRED_COLUMNS)}")
    names = [name.strip().lower() for name in header]
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        raise BadFile(
            f"the header lacks {', '.join(missing)}; expected a first line naming "
            f"{','.join(REQUIRED_COLUMNS)} (got {','.join(header)[:200]!r})"
        )
    position = {c: names.index(c) for c in REQUIRED_COLUMNS}
    good: list[HistoryLine] = []
    bad: list[tuple[int, str]] = []
    try:
        for row in reader:
            number = reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # blank line
            if len(row) != len(header):
                bad.append((number, f"expected {len(header)} fields, got {len(row)}"))
                continue
            parsed, reasons = _parse_row(row, position, number, zone, now)
            if reasons:
                bad.append((number, "; ".join(reasons)))
            else:
                good.append(parsed)
    except csv.Error as exc:
        raise BadFile(f"line {reader.line_num}: {exc}") from exc
    return _orders_within_total(good, bad, zone)


def _orders_within_total(good, bad, zone):
    """Lines become one order per customer and local day: an order whose total would not fit
    Order.total_amount makes each of its lines bad."""
    totals: dict[tuple[str, dt.date], Decimal] = {}
    for line in good:
        key = (line.customer_id, line.ordered_at.astimezone(zone).date())
        totals[key] = totals.get(key, Decimal(0)) + line.quantity * line.unit_price
    over = {key for key, total in totals.items() if total > ORDER_TOTAL_MAX}
    if not over:
        return good, bad
    kept = []
    for line in good:
        key = (line.customer_id, line.ordered_at.astimezone(zone).date())
        if key in over:
            bad.append(
                (line.line, f"the order of {key[0]} on {key[1]} would total more than "
                 f"{ORDER_TOTAL_MAX}")
            )  # fmt: skip
        else:
            kept.append(line)
    return kept, sorted(bad)


def _parse_row(
    row: list[str], position: dict[str, int], number: int, zone: dt.tzinfo, now: dt.datetime
) -> tuple[HistoryLine | None, list[str]]:
    reasons = []
    customer_id = row[position["customer_id"]].strip()
    if not customer_id:
        reasons.append("customer_id is empty")
    elif not CUSTOMER_ID.match(customer_id):
        reasons.append(
            f"customer_id {customer_id[:40]!r} may only hold letters, digits and @.+-_ "
            "(at most 140)"
        )
    text = row[position["date"]].strip()
    ordered_at, reason = _parse_date(text, zone)
    if reason:
        reasons.append(reason)
    elif len(text) == 10 and ordered_at.date() == now.astimezone(zone).date():
        ordered_at = min(ordered_at, now.astimezone(zone))
    elif ordered_at > now:
        reasons.append(
            f"date {text[:40]!r} is in the future (now is "
            f"{now.astimezone(zone).isoformat(timespec='minutes')})"
        )
    sku = row[position["sku"]].strip()
    if not sku:
        reasons.append("sku is empty")
    elif len(sku) > SKU_MAX:
        reasons.append(f"sku is longer than {SKU_MAX} characters")
    elif CONTROL.search(sku):
        reasons.append(f"sku {sku[:40]!r} contains a control character")
    quantity, reason = _parse_quantity(row[position["quantity"]].strip())
    if reason:
        reasons.append(reason)
    price, reason = _parse_price(row[position["unit_price"]].strip())
    if reason:
        reasons.append(reason)
    if not reasons and quantity * price > ORDER_TOTAL_MAX:
        reasons.append(f"quantity x unit_price exceeds the largest order total ({ORDER_TOTAL_MAX})")
    if reasons:
        return None, reasons
    return HistoryLine(number, customer_id, ordered_at, sku, quantity, price), []


def _parse_date(text: str, zone: dt.tzinfo) -> tuple[dt.datetime | None, str]:
    """The aware moment, or the reason it is not one the database can store."""
    try:
        if len(text) == 10:
            moment = dt.datetime.combine(dt.date.fromisoformat(text), DATE_ONLY_TIME, zone)
        else:
            moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None, f"date {text[:40]!r} is not a date like 2024-01-31 or 2024-01-31T14:05"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    offset = moment.utcoffset()
    if offset is not None and abs(offset) > MAX_UTC_OFFSET:
        return None, f"date {text[:40]!r} has a UTC offset beyond +-15:59"
    try:
        moment.astimezone(dt.UTC)
        moment.astimezone(zone)
    except OverflowError:
        return None, f"date {text[:40]!r} is out of range once converted to UTC"
    return moment, ""


def _parse_quantity(text: str) -> tuple[int | None, str]:
    try:
        quantity = int(text)
    except ValueError:
        return None, f"quantity {text[:40]!r} is not a whole number"
    if quantity < 1:
        return None, f"quantity must be at least 1, got {quantity}"
    if quantity > QUANTITY_MAX:
        return None, f"quantity {quantity} is too large"
    return quantity, ""


def _parse_price(text: str) -> tuple[Decimal | None, str]:
    try:
        price = Decimal(text)
    except InvalidOperation:
        return None, f"unit_price {text[:40]!r} is not a number"
    if not price.is_finite() or price < 0:
        return None, f"unit_price must be a number of 0 or more, got {text[:40]!r}"
    if price > PRICE_MAX:
        return None, f"unit_price {text[:40]!r} is too large"
    if price != price.quantize(Decimal("0.01")):
        return None, f"unit_price {text[:40]!r} has more than 2 decimal places"
    return price.quantize(Decimal("0.01")), ""
