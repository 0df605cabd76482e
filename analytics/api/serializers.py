from rest_framework import serializers


class DaySerializer(serializers.Serializer):
    day = serializers.DateField()
    orders = serializers.IntegerField(help_text="Orders placed that day, any status.")
    orders_booked = serializers.IntegerField(help_text="Of those, not cancelled or rejected.")
    revenue = serializers.DecimalField(
        max_digits=16, decimal_places=2, help_text="Booked revenue (not cancelled or rejected)."
    )
    revenue_shipped = serializers.DecimalField(
        max_digits=16,
        decimal_places=2,
        help_text="Of it, orders that shipped: never a shortage, cancelled or rejected order.",
    )


class TotalsSerializer(serializers.Serializer):
    orders = serializers.IntegerField()
    orders_booked = serializers.IntegerField()
    revenue = serializers.DecimalField(
        max_digits=16, decimal_places=2, help_text="Booked revenue (not cancelled or rejected)."
    )
    revenue_shipped = serializers.DecimalField(
        max_digits=16, decimal_places=2, help_text="Of it, orders shipped or completed."
    )
    average_order_value = serializers.DecimalField(max_digits=16, decimal_places=2, allow_null=True)


class WindowTotalsSerializer(serializers.Serializer):
    last_30_days = TotalsSerializer()
    last_90_days = TotalsSerializer()


class FunnelStepSerializer(serializers.Serializer):
    status = serializers.CharField()
    label = serializers.CharField()
    orders = serializers.IntegerField(help_text="Orders placed in the last 90 days now here.")


class LeadTimeSerializer(serializers.Serializer):
    p50_seconds = serializers.FloatField(allow_null=True)
    p95_seconds = serializers.FloatField(allow_null=True)
    mean_seconds = serializers.FloatField(allow_null=True)
    orders = serializers.IntegerField(help_text="Orders of the last 90 days with a lead time.")
    sample_size = serializers.IntegerField(help_text="Most recent orders the percentiles use.")


class TopProductSerializer(serializers.Serializer):
    product_id = serializers.IntegerField()
    sku = serializers.CharField()
    name = serializers.CharField()
    units = serializers.IntegerField()
    orders = serializers.IntegerField()
    revenue = serializers.DecimalField(max_digits=16, decimal_places=2)


class TopCustomerSerializer(serializers.Serializer):
    customer_id = serializers.IntegerField()
    username = serializers.CharField()
    orders = serializers.IntegerField()
    revenue = serializers.DecimalField(max_digits=16, decimal_places=2)
    average_order_value = serializers.DecimalField(max_digits=16, decimal_places=2)
    first_order_at = serializers.DateTimeField(allow_null=True)
    last_order_at = serializers.DateTimeField(allow_null=True)


class DashboardSerializer(serializers.Serializer):
    generated_at = serializers.DateTimeField()
    totals = WindowTotalsSerializer()
    days_30 = DaySerializer(many=True)
    days_90 = DaySerializer(many=True)
    status_funnel = FunnelStepSerializer(many=True)
    shortage_rate = serializers.FloatField(
        help_text="Share of the last 90 days' orders now in inventory shortage."
    )
    lead_time = LeadTimeSerializer()
    top_products = TopProductSerializer(many=True)
    top_customers = TopCustomerSerializer(many=True)
