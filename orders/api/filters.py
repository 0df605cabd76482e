import django_filters

from orders.models import Product


class ProductFilter(django_filters.FilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains")
    sku = django_filters.CharFilter(lookup_expr="iexact")
    min_price = django_filters.NumberFilter(field_name="unit_price", lookup_expr="gte")
    max_price = django_filters.NumberFilter(field_name="unit_price", lookup_expr="lte")
    in_stock = django_filters.BooleanFilter(method="filter_in_stock")

    class Meta:
        model = Product
        fields = ["active"]

    def filter_in_stock(self, queryset, name, value):
        if value is None:
            return queryset
        return queryset.filter(quantity_available__gt=0) if value else queryset.filter(
            quantity_available__lte=0
        )
