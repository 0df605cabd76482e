"""Stock allocation (Saleor style): choose one warehouse for an order and reserve its units.

Rules:
- An order ships from ONE warehouse: it must hold every line with enough available stock
  (on hand - allocated) and have the staging space (units allocated there + this order's units
  <= capacity).
- Warehouses are tried in primary-key order, and rows are locked in one order everywhere
  (order -> warehouse -> stock rows by pk), so concurrent fulfilments cannot deadlock.
- Every reservation is a conditional UPDATE (`... WHERE quantity - quantity_allocated >= n`), so
  even without row locks (SQLite) no stock row is ever oversold; the database constraint
  `allocated <= on hand` is the last line of defence.

Callers run `allocate_order` inside their transaction, with the order row already locked.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from django.db.models import F, Sum

from orders.models import Allocation, Order, OrderItem, Stock, Warehouse


class InsufficientStock(Exception):
    """No warehouse can ship the whole order now."""

    def __init__(self, order: Order, detail: str):
        super().__init__(f"Order {order.reference}: {detail}")
        self.order = order
        self.detail = detail


@dataclass(frozen=True)
class Plan:
    warehouse_id: int
    # order item id -> (stock id, quantity)
    lines: dict[int, tuple[int, int]]


def order_demand(items: list[OrderItem]) -> dict[int, int]:
    """Units needed per product (lines of the same product add up)."""
    demand: dict[int, int] = defaultdict(int)
    for item in items:
        demand[item.product_id] += item.quantity
    return dict(demand)


def warehouse_plans(
    *,
    items: list[OrderItem],
    available: dict[tuple[int, int], tuple[int, int]],
    staged: dict[int, int],
    capacity: dict[int, int],
) -> list[Plan]:
    """Every warehouse that could ship `items`, in primary-key order. Pure: no queries.

    available: (product id, warehouse id) -> (stock id, units available)
    staged: warehouse id -> units allocated there now; capacity: warehouse id -> capacity
    """
    demand = order_demand(items)
    units = sum(demand.values())
    plans = []
    for warehouse_id in sorted(capacity):
        if staged.get(warehouse_id, 0) + units > capacity[warehouse_id]:
            continue
        rows = {p: available.get((p, warehouse_id)) for p in demand}
        if any(row is None or row[1] < demand[p] for p, row in rows.items()):
            continue
        lines = {item.pk: (rows[item.product_id][0], item.quantity) for item in items}
        plans.append(Plan(warehouse_id=warehouse_id, lines=lines))
    return plans


def stock_snapshot(product_ids) -> tuple[dict, dict, dict]:
    """(available, staged, capacity) for `warehouse_plans`, in three small queries."""
    available = {
        (s["product_id"], s["warehouse_id"]): (s["id"], s["quantity"] - s["quantity_allocated"])
        for s in Stock.objects.filter(product_id__in=product_ids).values(
            "id", "product_id", "warehouse_id", "quantity", "quantity_allocated"
        )
    }
    staged = dict(
        Stock.objects.filter(quantity_allocated__gt=0)
        .values("warehouse_id")
        .annotate(units=Sum("quantity_allocated"))
        .values_list("warehouse_id", "units")
    )
    capacity = dict(Warehouse.objects.values_list("id", "capacity"))
    return available, staged, capacity


def shortage_detail(items: list[OrderItem], available: dict) -> str:
    """Why no warehouse can ship `items`, in the words of the catalogue: SKUs and units."""
    demand = order_demand(items)
    skus = {item.product_id: item.product.sku for item in items}
    best = defaultdict(int)
    for (product_id, _), (_, units) in available.items():
        best[product_id] = max(best[product_id], units)
    short = [
        f"{skus[p]}: needs {n}, best warehouse has {best[p]}"
        for p, n in demand.items()
        if best[p] < n
    ]
    if short:
        return "not enough stock in one warehouse (" + "; ".join(short) + ")"
    return "no single warehouse holds every line with enough stock and staging space"


def allocate_order(*, order: Order) -> Warehouse:
    """Reserve stock for every line of `order` in one warehouse; raises InsufficientStock.

    Must run inside a transaction that holds the order's row lock.
    """
    items = list(order.items.select_related("product"))
    if not items:
        raise InsufficientStock(order, "the order has no lines")
    available, staged, capacity = stock_snapshot({i.product_id for i in items})
    for plan in warehouse_plans(items=items, available=available, staged=staged, capacity=capacity):
        if _try_plan(order, items, plan):
            return Warehouse.objects.get(pk=plan.warehouse_id)
    raise InsufficientStock(order, shortage_detail(items, available))


def _try_plan(order: Order, items: list[OrderItem], plan: Plan) -> bool:
    # The warehouse row lock serialises staging-space checks per warehouse (PostgreSQL;
    # SQLite's IMMEDIATE transactions are serial already).
    warehouse = Warehouse.objects.select_for_update().get(pk=plan.warehouse_id)
    units = sum(q for _, q in plan.lines.values())
    staged = (
        Stock.objects.filter(warehouse_id=warehouse.pk).aggregate(s=Sum("quantity_allocated"))["s"]
        or 0
    )
    if staged + units > warehouse.capacity:
        return False
    stock_ids = sorted({stock_id for stock_id, _ in plan.lines.values()})
    list(Stock.objects.select_for_update().filter(pk__in=stock_ids).order_by("pk"))
    done: list[tuple[int, int]] = []
    for item in items:
        stock_id, quantity = plan.lines[item.pk]
        reserved = Stock.objects.filter(
            pk=stock_id, quantity__gte=F("quantity_allocated") + quantity
        ).update(quantity_allocated=F("quantity_allocated") + quantity)
        if not reserved:
            # Someone took the stock since the snapshot: undo this plan's reservations.
            for undo_id, undo_qty in done:
                Stock.objects.filter(pk=undo_id).update(
                    quantity_allocated=F("quantity_allocated") - undo_qty
                )
            return False
        done.append((stock_id, quantity))
    Allocation.objects.bulk_create(
        [
            Allocation(order_item_id=item.pk, stock_id=plan.lines[item.pk][0], quantity=q)
            for item in items
            if (q := plan.lines[item.pk][1])
        ]
    )
    return True


def orders_satisfiable(orders: list[Order]) -> list[Order]:
    """The orders today's stock could fulfil if they took it in the given order: each counts
    what the ones before it would take. One snapshot and no locks: a plan, not a reservation
    (`allocate_order` reserves, under locks, when each order is fulfilled)."""
    items_of = {order.pk: list(order.items.all()) for order in orders}
    available, staged, capacity = stock_snapshot(
        {i.product_id for items in items_of.values() for i in items}
    )
    satisfiable = []
    for order in orders:
        items = items_of[order.pk]
        plans = warehouse_plans(items=items, available=available, staged=staged, capacity=capacity)
        if not plans:
            continue
        plan = plans[0]  # the one `allocate_order` tries first
        for item in items:
            stock_id, quantity = plan.lines[item.pk]
            key = (item.product_id, plan.warehouse_id)
            available[key] = (stock_id, available[key][1] - quantity)
            staged[plan.warehouse_id] = staged.get(plan.warehouse_id, 0) + quantity
        satisfiable.append(order)
    return satisfiable


def _allocations_remove(*, order: Order, shipped: bool) -> int:
    """Delete `order`'s allocations and take their units off the allocated counts (and off
    the units on hand when `shipped`), stock rows locked in primary-key order; returns units."""
    allocations = list(
        Allocation.objects.filter(order_item__order=order).values_list("id", "stock_id", "quantity")
    )
    if not allocations:
        return 0
    per_stock: dict[int, int] = defaultdict(int)
    for _, stock_id, quantity in allocations:
        per_stock[stock_id] += quantity
    list(Stock.objects.select_for_update().filter(pk__in=per_stock).order_by("pk"))
    for stock_id, quantity in sorted(per_stock.items()):
        change = {"quantity_allocated": F("quantity_allocated") - quantity}
        if shipped:
            change["quantity"] = F("quantity") - quantity
        Stock.objects.filter(pk=stock_id).update(**change)
    Allocation.objects.filter(pk__in=[a[0] for a in allocations]).delete()
    return sum(per_stock.values())


def allocations_release(*, order: Order) -> int:
    """Give back every unit allocated to `order` and delete its allocations; returns units."""
    return _allocations_remove(order=order, shipped=False)


def allocations_ship(*, order: Order) -> int:
    """Stock leaves the warehouse: on hand and allocated go down together; allocations go."""
    return _allocations_remove(order=order, shipped=True)
