"""Placing orders: lines validated once, prices snapshot, privileged fields checked."""

from __future__ import annotations

from collections import OrderedDict
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, IntegerField, Max, Value
from django.db.models.functions import Coalesce

from orders import signals
from orders.models import Order, OrderItem, OrderStatusChange, Product
from orders.services.common import MAX_QUANTITY, order_lock

# (request field, value) -> the permission a request setting it needs. The one table: the
# service enforces it and the authorisation matrix needs a row per entry, so a new privileged
# field cannot go untested.
PRIVILEGED_FIELDS: dict[tuple[str, object], str] = {
    ("auto_approve", True): "orders.approve_order",
    ("priority", Order.Priority.URGENT): "orders.place_urgent_order",
}


def order_privileges_check(*, user, fields: dict) -> None:
    """Raise PermissionDenied when `fields` set a privileged value `user` may not set."""
    for (field, value), perm in PRIVILEGED_FIELDS.items():
        if field not in fields or fields[field] != value or user.has_perm(perm):
            continue
        if field == "priority" and settings.ORDER_CUSTOMERS_MAY_SET_URGENT:
            continue  # the deployment lets every customer mark orders urgent
        raise PermissionDenied(f"Setting {field}={value} needs the permission {perm}.")


def _clean_items(items) -> list[tuple[Product, int]]:
    """Validate the requested lines; merges lines of the same sku. Raises ValidationError.

    The only place products are looked up when an order is placed (the API's serializer checks
    the shape of the lines, not the catalogue).
    """
    if not isinstance(items, list | tuple) or not items:
        raise ValidationError({"items": "An order needs at least one line."})
    if len(items) > settings.ORDER_MAX_LINES:
        raise ValidationError(
            {"items": f"An order may have at most {settings.ORDER_MAX_LINES} lines."}
        )
    wanted: OrderedDict[str, int] = OrderedDict()
    # Keyed like a nested serializer's errors (`items.1.sku`), so the API's one error format
    # points at the line and field.
    errors: dict[str, list[str]] = {}
    for i, line in enumerate(items):
        sku = line.get("sku") if isinstance(line, dict) else None
        quantity = line.get("quantity") if isinstance(line, dict) else None
        if not isinstance(sku, str) or not sku:
            errors.setdefault(f"items.{i}.sku", []).append("This field is required.")
            continue
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
            errors.setdefault(f"items.{i}.quantity", []).append(
                "Quantity must be a whole number above 0."
            )
            continue
        wanted[sku] = wanted.get(sku, 0) + quantity
        limit = min(MAX_QUANTITY, settings.ORDER_MAX_LINE_QUANTITY)
        if wanted[sku] > limit:
            errors.setdefault(f"items.{i}.quantity", []).append(
                f"Quantity of {sku} may be at most {limit} per order (ORDER_MAX_LINE_QUANTITY)."
            )
    # max_orderable in the same statement: a line above it is placed as a back-order, and says so.
    free = F("stocks__quantity") - F("stocks__quantity_allocated")
    products = {
        p.sku: p
        for p in Product.objects.filter(sku__in=list(wanted)).annotate(
            max_orderable=Coalesce(Max(free), Value(0), output_field=IntegerField())
        )
    }
    first_line = {}
    for i, line in enumerate(items):
        if isinstance(line, dict) and isinstance(line.get("sku"), str):
            first_line.setdefault(line["sku"], i)
    for sku in wanted:
        product = products.get(sku)
        if product is None:
            errors.setdefault(f"items.{first_line[sku]}.sku", []).append(f"Unknown sku {sku!r}.")
        elif not product.active:
            errors.setdefault(f"items.{first_line[sku]}.sku", []).append(
                f"Product {sku!r} is no longer sold."
            )
    if errors:
        raise ValidationError(errors)
    return [(products[sku], quantity) for sku, quantity in wanted.items()]


def order_create(
    *,
    customer,
    items: list[dict],
    auto_approve: bool = False,
    priority: str = Order.Priority.NORMAL,
    idempotency_key: str | None = None,
    placed_by=None,
) -> Order:
    """Place an order: lines validated, prices snapshot, total computed; `order_placed` is sent
    in the transaction (its receivers dispatch the approval and analytics jobs). With an
    `idempotency_key` already used by this customer, the first order is returned."""
    placed_by = placed_by or customer
    if idempotency_key:
        existing = Order.objects.filter(customer=customer, idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing
    if priority not in Order.Priority.values:
        raise ValidationError({"priority": f"Unknown priority {priority!r}."})
    order_privileges_check(
        user=placed_by, fields={"auto_approve": auto_approve, "priority": priority}
    )
    lines = _clean_items(items)
    try:
        with transaction.atomic():
            order = Order.objects.create(
                customer=customer,
                priority=priority,
                auto_approve=auto_approve,
                idempotency_key=idempotency_key or None,
                total_amount=sum((p.unit_price * q for p, q in lines), start=Decimal("0")),
            )
            OrderItem.objects.bulk_create(
                [
                    OrderItem(
                        order=order,
                        product=p,
                        quantity=q,
                        unit_price=p.unit_price,
                        backorder=q > p.max_orderable,
                    )
                    for p, q in lines
                ]
            )
            _placed(order, actor=placed_by)
    except IntegrityError:
        if not idempotency_key:
            raise
        # A concurrent request with the same key won the race: it is the first order.
        return Order.objects.get(customer=customer, idempotency_key=idempotency_key)
    return order


@transaction.atomic
def order_register_created(*, order: Order, actor=None) -> Order:
    """For orders created outside `order_create` (the admin's add form): recompute the total
    from the lines and start the workflow, as `order_create` does."""
    order = order_lock(order)
    if OrderStatusChange.objects.filter(order=order).exists():
        return order  # already announced
    total = sum((i.line_total for i in order.items.all()), start=Decimal("0"))
    if order.total_amount != total:
        order.total_amount = total
        order.save(update_fields=["total_amount", "updated_at"])
    _placed(order, actor=actor)
    return order


def _placed(order: Order, *, actor) -> None:
    OrderStatusChange.objects.create(
        order=order, from_status="", to_status=order.status, actor=actor, note="placed"
    )
    signals.order_placed.send(sender=Order, order=order)
