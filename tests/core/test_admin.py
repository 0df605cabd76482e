"""Rows only services write are read-only in the admin, through one mixin."""

import pytest
from django.contrib import admin
from django.test import RequestFactory

from analytics.models import CustomerMetric, DailyMetric, DailyStatusMetric, ProductMetric
from ml.models import PredictionRun
from orders.models import Allocation, OrderItem, StockAdjustment
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

READ_ONLY = [
    Allocation,
    OrderItem,
    StockAdjustment,
    DailyMetric,
    DailyStatusMetric,
    CustomerMetric,
    ProductMetric,
    PredictionRun,
]


@pytest.mark.parametrize("model", READ_ONLY, ids=lambda m: m.__name__)
def test_even_a_superuser_can_only_look(model):
    request = RequestFactory().get("/admin/")
    request.user = UserFactory(is_staff=True, is_superuser=True)
    model_admin = admin.site._registry[model]
    assert model_admin.has_view_permission(request)
    allowed = (
        model_admin.has_add_permission(request),
        model_admin.has_change_permission(request),
        model_admin.has_delete_permission(request),
    )
    assert allowed == (False, False, False)
