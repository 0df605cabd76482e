import django_filters

from aktina.core.filters import StrictBooleanFilter, UtcIsoDateTimeFilter
from orders.models import Order, Product, Stock


class ProductFilter(django_filters.FilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains")
    sku = django_filters.CharFilter(lookup_expr="iexact")
    min_price = django_filters.NumberFilter(field_name="unit_price", lookup_expr="gte")
    max_price = django_filters.NumberFilter(field_name="unit_price", lookup_expr="lte")
    in_stock = StrictBooleanFilter(method="filter_in_stock")

    class Meta:
        model = Product
        fields = ["active"]

    def filter_in_stock(self, queryset, name, value):
        if value is None:
            return queryset
        return (
            queryset.filter(quantity_available__gt=0)
            if value
            else queryset.filter(quantity_available__lte=0)
        )


class OrderFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=Order.Status.choices)
    priority = django_filters.ChoiceFilter(choices=Order.Priority.choices)
    created_after = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    created_on = django_filters.DateFilter(field_name="created_at", lookup_expr="date")

    class Meta:
        model = Order
        fields = ["status", "priority"]


class StockFilter(django_filters.FilterSet):
    sku = django_filters.CharFilter(field_name="product__sku", lookup_expr="iexact")
    warehouse = django_filters.CharFilter(field_name="warehouse__code", lookup_expr="iexact")

    class Meta:
        model = Stock
        fields = ["sku", "warehouse"]
