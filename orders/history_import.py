"""Writes of an order-history import (`manage.py import_orders`): completed orders from the
checked lines of ``orders.history_csv``.

Rules that keep history trustworthy:

- an sku that is not in the catalogue is an error (nothing is imported), unless the caller
  asks for ``create_products``; products created that way are inactive, so nobody can order
  them before someone sets a price and stock and activates them;
- every line has a natural key (a hash of its customer, time, sku, quantity and price, and
  how many identical lines came before it in the same file); a line whose key was imported
  before is skipped, so importing a file again, or a file that overlaps an earlier one, adds
  only what is new.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections import Counter
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.db import connections, router, transaction
from django.utils import timezone

from aktina.core import roles
from orders.history_csv import HistoryLine
from orders.models import ImportedLine, Order, OrderItem, Product

IMPORT_BATCH = 2000
IMPORT_LOOKUP_CHUNK = 500
IMPORTED_CUSTOMER = "customer-{id}"


class HistoryImportError(Exception):
    """The lines cannot be imported as they are (the message says why); nothing was written."""


@transaction.atomic
def order_history_import(
    *, lines: list[HistoryLine], create_products: bool = False
) -> dict[str, int]:
    """Write checked history lines as completed orders, one per customer and local day.

    Lines imported before (same natural key) are skipped and counted as
    ``already_imported``. Creates the customers that do not exist (user ``customer-<id>``,
    unusable password, customer role). Unknown skus raise ``HistoryImportError`` unless
    ``create_products``: then they are created inactive, named after their sku, priced at
    their first line's price. Bulk inserts in one transaction: all or nothing. Bulk inserts
    send no signals, so analytics learns about the orders from ``manage.py
    rebuild_analytics``.
    """
    counts = {
        "lines": 0,
        "already_imported": 0,
        "orders": 0,
        "customers_created": 0,
        "products_created": 0,
    }
    keyed = _new_lines(lines)
    counts["already_imported"] = len(lines) - len(keyed)
    if not keyed:
        return counts
    new_lines = [line for line, _ in keyed]
    products, products_created = _import_products(new_lines, create=create_products)
    customers, customers_created = _import_customers({line.customer_id for line in new_lines})
    groups: dict[tuple[str, dt.date], list[tuple[HistoryLine, str]]] = {}
    for line, key in keyed:
        day = timezone.localtime(line.ordered_at).date()
        groups.setdefault((line.customer_id, day), []).append((line, key))
    order_rows, groups_in_order = [], []
    for (customer_id, _day), group in sorted(groups.items()):
        created = min(line.ordered_at for line, _ in group)
        order_rows.append(
            {
                "reference": _import_reference(),
                "customer_id": customers[customer_id],
                "total_amount": sum((ln.unit_price * ln.quantity for ln, _ in group), Decimal(0)),
                "created_at": created,
                "completed_at": created,
            }
        )
        groups_in_order.append(group)
    template = Order(status=Order.Status.COMPLETED)
    _insert_rows(Order, order_rows, template=template)
    ids = _ids_by_reference([row["reference"] for row in order_rows])
    _insert_rows(
        OrderItem,
        [
            {
                "order_id": ids[row["reference"]],
                "product_id": products[line.sku],
                "quantity": line.quantity,
                "unit_price": line.unit_price,
            }
            for row, group in zip(order_rows, groups_in_order, strict=True)
            for line, _ in group
        ],
        template=OrderItem(),
    )
    _insert_rows(
        ImportedLine,
        [
            {"key": key, "order_id": ids[row["reference"]]}
            for row, group in zip(order_rows, groups_in_order, strict=True)
            for _, key in group
        ],
        template=ImportedLine(),
    )
    return counts | {
        "lines": len(keyed),
        "orders": len(order_rows),
        "customers_created": customers_created,
        "products_created": products_created,
    }


def line_key(line: HistoryLine, occurrence: int) -> str:
    """The natural key of a line: what it says, plus how many identical lines came before it
    in its file (two equal rows in one file are two purchases, and stay two)."""
    moment = line.ordered_at.astimezone(dt.UTC).isoformat()
    text = "\x1f".join(
        (line.customer_id, moment, line.sku, str(line.quantity), str(line.unit_price))
    )
    return hashlib.sha256(f"{text}\x1f{occurrence}".encode()).hexdigest()


def _new_lines(lines: list[HistoryLine]) -> list[tuple[HistoryLine, str]]:
    seen: Counter[str] = Counter()
    keyed = []
    for line in lines:
        base = line_key(line, 0)
        keyed.append((line, base if seen[base] == 0 else line_key(line, seen[base])))
        seen[base] += 1
    keys = [key for _, key in keyed]
    known: set[str] = set()
    for start in range(0, len(keys), IMPORT_LOOKUP_CHUNK):
        chunk = keys[start : start + IMPORT_LOOKUP_CHUNK]
        known |= set(ImportedLine.objects.filter(key__in=chunk).values_list("key", flat=True))
    return [(line, key) for line, key in keyed if key not in known]


def _insert_rows(model, rows: list[dict], *, template) -> None:
    """INSERT ``rows`` (dicts of attname -> value) with executemany; every other column takes
    its value from ``template`` (the model's defaults), prepared once.

    ``bulk_create`` prepares every field of every object through the SQL compiler: for the
    28-column Order that was most of the import's time (100 000 lines took ~100 s on the
    loaded 2-core machine). Here only the varying columns are prepared per row. Rows get no
    primary key back; callers look them up by a unique column.
    """
    if not rows:
        return
    connection = connections[router.db_for_write(model)]
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    varying = [f for f in fields if f.attname in rows[0]]
    constant = {
        f.attname: f.get_db_prep_save(f.pre_save(template, add=True), connection)
        for f in fields
        if f.attname not in rows[0]
    }
    columns = [f.column for f in varying] + [f.column for f in fields if f.attname in constant]
    tail = [constant[f.attname] for f in fields if f.attname in constant]
    quote = connection.ops.quote_name
    sql = "INSERT INTO {} ({}) VALUES ({})".format(
        quote(model._meta.db_table),
        ", ".join(quote(c) for c in columns),
        ", ".join(["%s"] * len(columns)),
    )
    # Imports repeat values (days, prices, customers): prepare each distinct one once.
    # Equal values prepare equally (Decimal("1.0") and Decimal("1.00") both quantize to 1.00).
    memo: dict[str, dict] = {f.attname: {} for f in varying}

    def prepared(field, value):
        seen = memo[field.attname]
        if value not in seen:
            seen[value] = field.get_db_prep_save(value, connection)
        return seen[value]

    with connection.cursor() as cursor:
        for start in range(0, len(rows), IMPORT_BATCH):
            params = [
                [prepared(f, row[f.attname]) for f in varying] + tail
                for row in rows[start : start + IMPORT_BATCH]
            ]
            cursor.executemany(sql, params)


def _ids_by_reference(references: list[str]) -> dict[str, int]:
    ids: dict[str, int] = {}
    for start in range(0, len(references), IMPORT_LOOKUP_CHUNK):
        chunk = references[start : start + IMPORT_LOOKUP_CHUNK]
        ids |= dict(Order.objects.filter(reference__in=chunk).values_list("reference", "id"))
    return ids


def _import_customers(external_ids: set[str]) -> tuple[dict[str, int], int]:
    user_model = get_user_model()
    wanted = {IMPORTED_CUSTOMER.format(id=i): i for i in external_ids}
    found: dict[str, int] = {}
    names = sorted(wanted)
    for start in range(0, len(names), IMPORT_LOOKUP_CHUNK):
        chunk = names[start : start + IMPORT_LOOKUP_CHUNK]
        found |= dict(user_model.objects.filter(username__in=chunk).values_list("username", "id"))
    # One unusable hash for all: these accounts hold history, nobody logs in with them.
    unusable = make_password(None)
    new = [user_model(username=name, password=unusable) for name in names if name not in found]
    user_model.objects.bulk_create(new, batch_size=IMPORT_BATCH)
    if new:
        group = Group.objects.get(name=roles.CUSTOMER)
        membership = user_model.groups.through
        membership.objects.bulk_create(
            [membership(user_id=user.pk, group_id=group.pk) for user in new],
            batch_size=IMPORT_BATCH,
            ignore_conflicts=True,
        )
    found |= {user.username: user.pk for user in new}
    return {external: found[name] for name, external in wanted.items()}, len(new)


def skus_unknown(skus: set[str]) -> set[str]:
    """The skus not in the catalogue (a read for the command's first report)."""
    return set(skus) - set(Product.objects.filter(sku__in=skus).values_list("sku", flat=True))


def _import_products(lines: list[HistoryLine], *, create: bool) -> tuple[dict[str, int], int]:
    first_price: dict[str, Decimal] = {}
    for line in lines:
        first_price.setdefault(line.sku, line.unit_price)
    skus = sorted(first_price)
    found: dict[str, int] = {}
    for start in range(0, len(skus), IMPORT_LOOKUP_CHUNK):
        chunk = skus[start : start + IMPORT_LOOKUP_CHUNK]
        found |= dict(Product.objects.filter(sku__in=chunk).values_list("sku", "id"))
    unknown = [sku for sku in skus if sku not in found]
    if unknown and not create:
        shown = ", ".join(unknown[:10]) + (
            f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
        )
        raise HistoryImportError(
            f"{len(unknown)} sku(s) not in the catalogue: {shown}. Add the products first, or "
            "pass --create-products to create them inactive."
        )
    # Inactive: a product made from history has no stock and an unchecked price; orderable
    # only once someone activates it.
    new = [Product(sku=sku, name=sku, unit_price=first_price[sku], active=False) for sku in unknown]
    Product.objects.bulk_create(new, batch_size=IMPORT_BATCH)
    found |= {product.sku: product.pk for product in new}
    return found, len(new)


REFERENCE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"


def _import_reference() -> str:
    # "IMP-" and 12 symbols (60 random bits, one call): imported orders are recognisable, and
    # a collision among millions of imported orders has odds of about one in a million.
    bits = secrets.randbits(60)
    return "IMP-" + "".join(REFERENCE_ALPHABET[(bits >> (5 * i)) & 31] for i in range(12))
