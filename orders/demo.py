"""Demo data: a catalogue, warehouses, stock, users per role, and optional order history.

History is drawn with numpy in one go and written with bulk inserts: weekly and yearly
seasonality, a gentle trend, and customers whose order frequency and basket size differ by
orders of magnitude (lognormal), so analytics and ML have something real-looking to chew on.

Lead times (placed to shipped) are lognormal, a median of about a day with a tail of several
(p50 and p95 differ as they do in a warehouse), delivery follows one to four days later.
Orders of the last few days are still on their way (pending, approved, fulfilling,
shipped), and a few recent ones wait for stock in ``inventory_shortage``: about
``SHORTAGE_SHARE`` of the orders of the dashboard's 90-day window, so its shortage tile
and its funnel show the same orders.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.db import connection, transaction
from django.utils import timezone

from aktina.core import roles
from orders.models import Order, OrderItem, Product, Stock, Warehouse, _new_reference

WAREHOUSES = [
    ("ATH", "Athens central", 5000),
    ("THS", "Thessaloniki north", 3000),
    ("PAT", "Patras port", 1500),
]
CATEGORIES = ["Pallet", "Crate", "Label roll", "Stretch film", "Carton", "Strap", "Scanner"]
USERS = [
    # username, role, is_staff, is_superuser
    ("admin", None, True, True),
    ("manager", roles.MANAGER, True, False),
    ("inventory", roles.INVENTORY_MANAGER, True, False),
    ("operations", roles.OPERATIONS, True, False),
    ("customer", roles.CUSTOMER, False, False),
]
SEED_KEY = "seed:{seed}:{i}"
# Placed to shipped, hours: lognormal with this median and log-sd (p95 about 2.7 x median).
LEAD_MEDIAN_HOURS = 22.0
LEAD_SIGMA = 0.6
# Orders younger than this are still in flight, in these shares (the rest shipped).
IN_FLIGHT_DAYS = 3
IN_FLIGHT = {"pending": 0.15, "approved": 0.15, "fulfilling": 0.3}
# Of the orders placed in the last 90 days, this share waits for stock (the most recent
# ones of the last SHORTAGE_DAYS days).
SHORTAGE_SHARE = 0.02
SHORTAGE_DAYS = 14
SHORTAGE_NOTE = "Not enough stock in any warehouse for every line; waiting for a delivery."


@transaction.atomic
def demo_seed_base(*, password: str, seed: int = 7) -> dict:
    """Catalogue, warehouses, stock and users; running it again changes nothing."""
    roles.roles_sync()
    rng = np.random.default_rng(seed)
    warehouses = [
        Warehouse.objects.get_or_create(code=c, defaults={"name": n, "capacity": cap})[0]
        for c, n, cap in WAREHOUSES
    ]
    products = []
    for i in range(40):
        category = CATEGORIES[i % len(CATEGORIES)]
        price = Decimal(str(round(float(rng.lognormal(3.2, 0.8)), 2)))
        product, _ = Product.objects.get_or_create(
            sku=f"SKU-{i + 1:04d}",
            defaults={"name": f"{category} model {i + 1}", "unit_price": price},
        )
        products.append(product)
    for product in products:
        for warehouse in warehouses:
            Stock.objects.get_or_create(
                product=product,
                warehouse=warehouse,
                defaults={"quantity": int(rng.integers(20, 400))},
            )
    users = {}
    user_model = get_user_model()
    for username, role, is_staff, is_superuser in USERS:
        user, created = user_model.objects.get_or_create(
            username=username,
            defaults={
                "email": f"{username}@aktina.local",
                "is_staff": is_staff,
                "is_superuser": is_superuser,
            },
        )
        if created or not user.check_password(password):
            user.set_password(password)
            user.save(update_fields=["password"])
        if role:
            user.groups.add(Group.objects.get(name=role))
        users[username] = user
    return {"warehouses": len(warehouses), "products": len(products), "users": list(users)}


def demo_seed_history(*, orders: int, seed: int = 7, years: float = 2.0) -> int:
    """Add `orders` completed historical orders; returns how many were added (0 if present)."""
    if orders <= 0:
        return 0
    if Order.objects.filter(idempotency_key=SEED_KEY.format(seed=seed, i=orders - 1)).exists():
        return 0
    rng = np.random.default_rng(seed)
    products = list(Product.objects.filter(active=True).order_by("sku"))
    if not products:
        raise ValueError("Seed the catalogue first (demo_seed_base).")
    customers = _history_customers(max(20, orders // 25), rng)
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    dates = _seasonal_dates(orders, rng, now=now, years=years)
    # Lognormal activity: a few customers order very often, most rarely.
    activity = rng.lognormal(0, 1.3, size=len(customers))
    who = rng.choice(len(customers), size=orders, p=activity / activity.sum())
    basket = rng.lognormal(0, 0.9, size=len(customers))
    popularity = 1 / np.arange(1, len(products) + 1) ** 0.9
    popularity /= popularity.sum()
    prices = np.array([float(p.unit_price) for p in products])

    shortage = _shortage_positions(dates, now)
    added = 0
    for start in range(0, orders, 5000):
        end = min(orders, start + 5000)
        with transaction.atomic():
            added += _history_chunk(
                range(start, end),
                seed,
                dates,
                who,
                basket,
                popularity,
                prices,
                products,
                customers,
                rng,
                {i - start for i in shortage if start <= i < end},
            )
    return added


def _fates(placed: list[dt.datetime], shortage: set[int], now: dt.datetime, rng) -> list[dict]:
    """Status and timestamps of each order: shipped after a lognormal lead time and
    delivered one to four days later, unless it is recent enough to be in flight; the
    orders whose position is in ``shortage`` wait for stock."""
    lead = rng.lognormal(np.log(LEAD_MEDIAN_HOURS), LEAD_SIGMA, size=len(placed))
    delivery = rng.uniform(24, 96, size=len(placed))
    draw = rng.random(size=len(placed))
    # Every row names the same columns (_insert_rows takes them from the first).
    blank = {"shipped_at": None, "completed_at": None, "failure_reason": ""}
    fates = []
    for k, created in enumerate(placed):
        shipped = created + dt.timedelta(hours=float(lead[k]))
        completed = shipped + dt.timedelta(hours=float(delivery[k]))
        if k in shortage:
            fates.append(
                blank | {"status": Order.Status.INVENTORY_SHORTAGE, "failure_reason": SHORTAGE_NOTE}
            )
        elif now - created < dt.timedelta(days=IN_FLIGHT_DAYS) and shipped > now:
            edges = np.cumsum(list(IN_FLIGHT.values()))
            status = list(IN_FLIGHT)[int(np.searchsorted(edges, draw[k] * edges[-1]))]
            fates.append(blank | {"status": status})
        elif completed > now:
            fates.append(blank | {"status": Order.Status.SHIPPED, "shipped_at": shipped})
        else:
            fates.append(
                blank
                | {
                    "status": Order.Status.COMPLETED,
                    "shipped_at": shipped,
                    "completed_at": completed,
                }
            )
    return fates


def _shortage_positions(dates: list[dt.datetime], now: dt.datetime) -> set[int]:
    """Indexes of the most recent orders (within SHORTAGE_DAYS) that wait for stock:
    SHORTAGE_SHARE of the orders of the last 90 days, at least one when there are any."""
    window = [i for i, d in enumerate(dates) if now - d < dt.timedelta(days=90)]
    if not window:
        return set()
    count = max(1, round(SHORTAGE_SHARE * len(window)))
    recent = sorted(
        (i for i in window if now - dates[i] < dt.timedelta(days=SHORTAGE_DAYS)),
        key=lambda i: dates[i],
        reverse=True,
    )
    return set(recent[:count])


def _history_chunk(
    idx, seed, dates, who, basket, popularity, prices, products, customers, rng, shortage
):
    # Vectorised draws, then plain INSERTs: building 100 000 model instances through the ORM
    # took most of a minute on its own.
    n = len(idx)
    now = timezone.now()
    fates = _fates([dates[i] for i in idx], shortage, now, rng)
    lines_per_order = rng.integers(1, 5, size=n)
    owner = np.repeat(np.arange(n), lines_per_order)
    picks = rng.choice(len(products), size=len(owner), p=popularity)
    qty = np.maximum(1, rng.poisson(2 * basket[who[np.asarray(idx)[owner]]]))
    totals = np.bincount(owner, weights=prices[picks] * qty, minlength=n)
    orders = [
        {
            "reference": _new_reference(),
            "customer_id": customers[who[i]],
            "total_amount": Decimal(str(round(float(totals[k]), 2))),
            "idempotency_key": SEED_KEY.format(seed=seed, i=i),
            "created_at": dates[i],
            "updated_at": now,
            **fates[k],
        }
        for k, i in enumerate(idx)
    ]
    _insert_rows(Order, orders)
    keys = [o["idempotency_key"] for o in orders]
    ids = dict(Order.objects.filter(idempotency_key__in=keys).values_list("idempotency_key", "id"))
    # The same product twice in one order becomes one line with the summed quantity.
    merged: dict[tuple[int, int], int] = {}
    for k, p, q in zip(owner.tolist(), picks.tolist(), qty.tolist(), strict=True):
        merged[(k, p)] = merged.get((k, p), 0) + q
    _insert_rows(
        OrderItem,
        [
            {
                "order_id": ids[keys[k]],
                "product_id": products[p].pk,
                "quantity": q,
                "unit_price": products[p].unit_price,
            }
            for (k, p), q in merged.items()
        ],
    )
    return n


def _insert_rows(model, rows: list[dict]) -> None:
    """INSERT plain rows; fields a row does not name take their (non-callable) default."""
    if not rows:
        return
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    given = set(rows[0])
    constant = {
        f.attname: f.get_db_prep_save(f.get_default(), connection)
        for f in fields
        if f.attname not in given
    }
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    table = connection.ops.quote_name(model._meta.db_table)
    sql = f"INSERT INTO {table} ({columns}) VALUES ({placeholders})"
    params = [
        [
            f.get_db_prep_save(row[f.attname], connection)
            if f.attname in given
            else constant[f.attname]
            for f in fields
        ]
        for row in rows
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)


def _history_customers(count: int, rng) -> list[int]:
    user_model = get_user_model()
    existing = set(
        user_model.objects.filter(username__startswith="demo-customer-").values_list(
            "username", flat=True
        )
    )
    # One hash for all: these accounts exist for history, not for logging in.
    unusable = make_password(None)
    new = [
        user_model(
            username=f"demo-customer-{i:05d}", email=f"demo{i}@customers.local", password=unusable
        )
        for i in range(count)
        if f"demo-customer-{i:05d}" not in existing
    ]
    user_model.objects.bulk_create(new, batch_size=1000)
    group = Group.objects.get(name=roles.CUSTOMER)
    ids = list(
        user_model.objects.filter(username__startswith="demo-customer-")
        .order_by("username")
        .values_list("id", flat=True)[:count]
    )
    group.user_set.add(*ids)
    return ids


def _seasonal_dates(n: int, rng, *, now: dt.datetime, years: float) -> list[dt.datetime]:
    days = int(365 * years)
    day = np.arange(days)
    start = now - dt.timedelta(days=days)
    weekday = np.array([(start + dt.timedelta(days=int(d))).weekday() for d in range(7)])
    weekly = np.array([1.15, 1.2, 1.1, 1.05, 1.0, 0.55, 0.35])[weekday[day % 7]]
    doy = np.array([(start + dt.timedelta(days=int(d))).timetuple().tm_yday for d in day])
    yearly = 1 + 0.35 * np.sin(2 * np.pi * (doy - 80) / 365.25) + 0.4 * (doy > 320)
    trend = 1 + 0.3 * day / days
    weight = weekly * yearly * trend
    picked = np.sort(rng.choice(days, size=n, p=weight / weight.sum()))
    hours = rng.integers(8, 20, size=n)
    return [
        start + dt.timedelta(days=int(d), hours=int(h) - start.hour)
        for d, h in zip(picked, hours, strict=True)
    ]
