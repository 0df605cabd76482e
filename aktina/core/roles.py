"""Roles are Django groups with permissions; this module is their single definition."""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission
from django.db import transaction

CUSTOMER = "customer"
MANAGER = "manager"
INVENTORY_MANAGER = "inventory manager"
OPERATIONS = "operations"

# (app_label, codename) per role. Every API read and write, page and /metrics checks one of
# these; `is_staff` (set by `seed_demo` for staff roles) only opens the admin's login page.
# Business-wide data: every customer's orders (orders.view_all_orders), analytics
# (analytics.view_dailymetric), ML segments and forecasts (ml.view_*); operations alone read
# ML runs, the job ledger and /metrics (ml.view_predictionrun, jobs.view_jobrun).
_STAFF_READS = [
    ("orders", "view_all_orders"),
    ("analytics", "view_dailymetric"),
    ("ml", "view_customersegment"),
    ("ml", "view_productforecast"),
]
ROLE_PERMISSIONS: dict[str, list[tuple[str, str]]] = {
    CUSTOMER: [
        ("orders", "add_order"),
        ("orders", "view_order"),
        ("orders", "view_product"),
        ("notifications", "view_notification"),
    ],
    MANAGER: [
        *_STAFF_READS,
        ("orders", "add_order"),
        ("orders", "view_order"),
        ("orders", "change_order"),
        ("orders", "approve_order"),
        ("orders", "place_urgent_order"),
        ("orders", "cancel_fulfilling_order"),
        ("orders", "view_orderitem"),
        ("orders", "view_allocation"),
        ("orders", "view_product"),
        ("orders", "view_warehouse"),
        ("orders", "view_stock"),
        ("notifications", "view_notification"),
    ],
    INVENTORY_MANAGER: [
        *_STAFF_READS,
        ("orders", "view_order"),
        ("orders", "view_orderitem"),
        ("orders", "view_allocation"),
        ("orders", "view_product"),
        ("orders", "add_product"),
        ("orders", "change_product"),
        ("orders", "view_warehouse"),
        ("orders", "view_stock"),
        ("orders", "change_stock"),
        ("orders", "receive_stock"),
        ("orders", "view_stockadjustment"),
        ("notifications", "view_notification"),
    ],
    OPERATIONS: [
        *_STAFF_READS,
        ("orders", "add_order"),
        ("orders", "view_order"),
        ("orders", "change_order"),
        ("orders", "place_urgent_order"),
        ("orders", "cancel_fulfilling_order"),
        ("orders", "view_orderitem"),
        ("orders", "view_allocation"),
        ("orders", "view_product"),
        ("orders", "view_warehouse"),
        ("orders", "view_stock"),
        ("jobs", "view_jobrun"),
        ("jobs", "change_jobrun"),
        ("jobs", "delete_jobrun"),
        ("jobs", "operate_jobs"),
        ("jobs", "view_jobbatch"),
        ("notifications", "view_notification"),
        ("ml", "view_predictionrun"),
        ("ml", "refresh_predictions"),
    ],
}


@transaction.atomic
def roles_sync() -> dict[str, int]:
    """Create the role groups and set their permissions exactly; safe to run any number of times."""
    counts = {}
    for role, wanted in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        perms = []
        for app_label, codename in wanted:
            perm = Permission.objects.filter(
                content_type__app_label=app_label, codename=codename
            ).first()
            if perm is None:
                raise LookupError(f"Role {role!r} needs missing permission {app_label}.{codename}")
            perms.append(perm)
        group.permissions.set(perms)
        counts[role] = len(perms)
    return counts


def roles_sync_after_migrate(sender, app_config=None, **kwargs) -> None:
    # post_migrate fires once per app with models, after Django created that app's
    # permissions: the last such app's signal is the first moment every permission exists.
    from django.apps import apps

    with_models = [a for a in apps.get_app_configs() if a.models_module is not None]
    if app_config is not None and app_config is with_models[-1]:
        roles_sync()
