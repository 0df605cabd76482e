from rest_framework import serializers

from ml.models import CustomerSegment, PredictionRun


class SegmentQuerySerializer(serializers.Serializer):
    # A serializer field, not the raw query string: it rejects NUL characters (PostgreSQL
    # cannot compare them) and over-long values with a field-level 400.
    segment = serializers.CharField(required=False, allow_blank=True, max_length=64)


class ForecastQuerySerializer(serializers.Serializer):
    sku = serializers.CharField(required=False, allow_blank=True, max_length=64)


class RunSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    freq = serializers.CharField()
    horizon = serializers.IntegerField()
    order_lines = serializers.IntegerField()
    customers = serializers.IntegerField()
    products = serializers.IntegerField()
    metrics = serializers.JSONField(
        help_text="Segmentation: k, silhouette, silhouette_by_k, segments. Forecasts (held-out: "
        "scored on windows the model choice never saw): models, backtested, "
        "holdout_geometric_mean_ratio, holdout_ratio_p10, holdout_ratio_p90, holdout_beaten, "
        "holdout_worse, holdout_worst_ratio, holdout_coverage, interval_level. Timings in "
        "seconds."
    )


class SegmentProfileSerializer(serializers.Serializer):
    name = serializers.CharField()
    size = serializers.IntegerField(help_text="Customers in the segment.")
    recency_days = serializers.FloatField(help_text="Mean days since the last order.")
    frequency = serializers.FloatField(help_text="Mean number of orders.")
    monetary = serializers.FloatField(help_text="Mean spend.")
    recency_score = serializers.FloatField(help_text="Mean percentile, 0..1, 1 = most recent.")
    frequency_score = serializers.FloatField(help_text="Mean percentile, 0..1, 1 = most orders.")
    monetary_score = serializers.FloatField(help_text="Mean percentile, 0..1, 1 = most spend.")


class SegmentMemberSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="customer.username")

    class Meta:
        model = CustomerSegment
        fields = ["customer_id", "username", "segment", "recency_days", "frequency", "monetary"]


class SegmentMemberPageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = SegmentMemberSerializer(many=True)


class SegmentsSerializer(serializers.Serializer):
    run = RunSummarySerializer(allow_null=True, help_text="Null before the first refresh.")
    segments = SegmentProfileSerializer(many=True)
    customers = SegmentMemberPageSerializer(
        allow_null=True,
        help_text="Staff only (null for customers): per-customer membership, a page at a time "
        "(`page`), optionally of one segment (`segment`).",
    )


class ForecastPointSerializer(serializers.Serializer):
    period = serializers.DateField(help_text="First day of the period.")
    value = serializers.IntegerField(help_text="Forecast demand, rounded to whole units.")
    lower = serializers.IntegerField(help_text="80 % interval, lower bound (rounded down).")
    upper = serializers.IntegerField(help_text="80 % interval, upper bound (rounded up).")


class ForecastSerializer(serializers.Serializer):
    product_id = serializers.IntegerField()
    sku = serializers.CharField()
    name = serializers.CharField()
    freq = serializers.CharField()
    horizon = serializers.IntegerField()
    model = serializers.CharField(
        help_text="seasonal_naive, exp_smoothing, theta, ensemble or gradient_boosting."
    )
    points = ForecastPointSerializer(many=True)
    holdout_mae = serializers.FloatField(
        allow_null=True,
        help_text="MAE of the model choice on backtest windows it did not see (null: history "
        "too short to backtest).",
    )
    holdout_wape = serializers.FloatField(allow_null=True)
    holdout_mase = serializers.FloatField(allow_null=True)
    holdout_naive_mae = serializers.FloatField(
        allow_null=True, help_text="Seasonal naive's MAE on the same windows."
    )
    holdout_naive_wape = serializers.FloatField(allow_null=True)
    holdout_naive_mase = serializers.FloatField(allow_null=True)
    holdout_ratio = serializers.FloatField(
        allow_null=True, help_text="holdout_mae / holdout_naive_mae; above 1 is worse than naive."
    )
    holdout_coverage = serializers.FloatField(
        allow_null=True, help_text="Share of held-out actuals inside the 80 % interval."
    )


class PredictionRunSerializer(serializers.ModelSerializer):
    # A plain string in the schema: an enum named "status" would collide with the order and
    # job-run enums of the same name.
    status = serializers.CharField(read_only=True, help_text="running, succeeded or failed.")
    duration_seconds = serializers.SerializerMethodField()

    class Meta:
        model = PredictionRun
        fields = [
            "id",
            "status",
            "only",
            "freq",
            "horizon",
            "started_at",
            "finished_at",
            "duration_seconds",
            "order_lines",
            "customers",
            "products",
            "metrics",
            "error",
            "current_segments",
            "current_forecasts",
        ]

    def get_duration_seconds(self, run: PredictionRun) -> float | None:
        return run.duration.total_seconds() if run.duration is not None else None
