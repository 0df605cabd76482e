"""Privileged order fields and transitions need permissions, not `is_staff`."""

import pytest
from django.core.exceptions import PermissionDenied

from aktina.core import roles
from orders.models import Order
from orders.services import (
    InvalidTransition,
    order_approve,
    order_cancel,
    order_create,
    order_fulfil,
)

pytestmark = pytest.mark.django_db
S = Order.Status


def place(user, **kwargs):
    return order_create(customer=user, items=[{"sku": "SKU-A", "quantity": 1}], **kwargs)


@pytest.mark.parametrize("role", [roles.INVENTORY_MANAGER, roles.OPERATIONS])
def test_staff_without_approve_order_cannot_place_pre_approved_orders(make_user, stock, role):
    user = make_user(role, username="staffer")
    assert user.is_staff
    with pytest.raises(PermissionDenied):
        place(user, auto_approve=True)
    assert not Order.objects.exists()


def test_managers_place_pre_approved_orders(make_user, stock):
    order = place(make_user(roles.MANAGER, username="mgr"), auto_approve=True)
    assert order.auto_approve


def test_urgent_needs_place_urgent_order(make_user, stock, settings):
    settings.ORDER_CUSTOMERS_MAY_SET_URGENT = False
    with pytest.raises(PermissionDenied):
        place(make_user(roles.INVENTORY_MANAGER, username="inv"), priority="urgent")
    with pytest.raises(PermissionDenied):
        place(make_user(roles.CUSTOMER, username="cus"), priority="urgent")
    assert (
        place(make_user(roles.OPERATIONS, username="ops"), priority="urgent").priority == "urgent"
    )
    assert place(make_user(roles.MANAGER, username="mgr"), priority="urgent").priority == "urgent"
    settings.ORDER_CUSTOMERS_MAY_SET_URGENT = True
    assert place(make_user(roles.CUSTOMER, username="cus2"), priority="urgent").priority == "urgent"


def _fulfilling(customer):
    order = place(customer)
    order_approve(order=order)
    return order_fulfil(order=order)


def test_cancel_while_fulfilling_needs_cancel_fulfilling_order(make_user, customer, stock):
    order = _fulfilling(customer)
    inventory = make_user(roles.INVENTORY_MANAGER, username="inv")
    with pytest.raises((PermissionDenied, InvalidTransition)):
        order_cancel(order=order, cancelled_by=inventory)
    with pytest.raises(InvalidTransition):
        order_cancel(order=order, cancelled_by=customer)
    order.refresh_from_db()
    assert order.status == S.FULFILLING
    assert order_cancel(order=order, cancelled_by=make_user(roles.OPERATIONS)).status == S.CANCELLED


def test_roles_get_the_new_permissions_idempotently():
    from django.contrib.auth.models import Group

    from aktina.core.roles import roles_sync

    roles_sync()
    roles_sync()

    def perms(role):
        return set(Group.objects.get(name=role).permissions.values_list("codename", flat=True))

    assert {"approve_order", "place_urgent_order", "cancel_fulfilling_order"} <= perms(
        roles.MANAGER
    )
    assert {"place_urgent_order", "cancel_fulfilling_order"} <= perms(roles.OPERATIONS)
    assert "approve_order" not in perms(roles.OPERATIONS)
    assert not {"approve_order", "place_urgent_order", "cancel_fulfilling_order"} & perms(
        roles.INVENTORY_MANAGER
    )
    assert not {"approve_order", "place_urgent_order", "cancel_fulfilling_order"} & perms(
        roles.CUSTOMER
    )
