from rest_framework import viewsets

from orders.api.filters import ProductFilter
from orders.api.serializers import ProductSerializer
from orders.selectors import product_list


class ProductViewSet(viewsets.ReadOnlyModelViewSet):
    """The catalogue with what can still be promised (on hand minus allocated, all warehouses)."""

    serializer_class = ProductSerializer
    filterset_class = ProductFilter
    ordering_fields = ["sku", "name", "unit_price", "quantity_available"]

    def get_queryset(self):
        return product_list()
