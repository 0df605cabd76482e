"""Reads of the catalogue, stock and orders, with their joins chosen once."""

from __future__ import annotations

from django.db.models import F, IntegerField, QuerySet, Sum, Value
from django.db.models.functions import Coalesce

from orders.models import Product


def product_list() -> QuerySet[Product]:
    return Product.objects.annotate(
        quantity_available=Coalesce(
            Sum(F("stocks__quantity") - F("stocks__quantity_allocated")),
            Value(0),
            output_field=IntegerField(),
        )
    ).order_by("sku")
