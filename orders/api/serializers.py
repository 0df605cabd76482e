from rest_framework import serializers

from orders.models import Product


class ProductSerializer(serializers.ModelSerializer):
    quantity_available = serializers.IntegerField(read_only=True)

    class Meta:
        model = Product
        fields = ["id", "sku", "name", "unit_price", "active", "quantity_available"]
