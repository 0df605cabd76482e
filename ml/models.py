"""Versioned ML results: every refresh writes a new `PredictionRun` with its rows.

Readers only ever look at the *current* run of each kind, and a refresh switches "current"
in the same transaction that inserts its rows, so a reader sees the previous results or the
new ones, never half of a refresh. "Current" is kept per kind (segments, forecasts) with a
partial unique constraint each: a run made with `only="segments"` becomes the current
segmentation while the forecasts stay those of an earlier run, with no rows copied.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

# The longest forecast horizon a refresh or an evaluation accepts, in periods.
MAX_HORIZON = 366


class PredictionRun(models.Model):
    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    class Only(models.TextChoices):
        SEGMENTS = "segments", "Segments only"
        FORECASTS = "forecasts", "Forecasts only"

    class Freq(models.TextChoices):
        DAILY = "D", "Daily"
        WEEKLY = "W", "Weekly"
        MONTHLY = "M", "Monthly"

    status = models.CharField(max_length=12, choices=Status.choices, default=Status.RUNNING)
    only = models.CharField(
        max_length=12, choices=Only.choices, blank=True, help_text="Empty: both kinds."
    )
    freq = models.CharField(max_length=1, choices=Freq.choices, default=Freq.WEEKLY)
    horizon = models.PositiveSmallIntegerField(default=8)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    duration = models.DurationField(null=True, blank=True)
    order_lines = models.PositiveIntegerField(default=0, help_text="Order lines read.")
    customers = models.PositiveIntegerField(default=0, help_text="Customers segmented.")
    products = models.PositiveIntegerField(default=0, help_text="Products forecast.")
    # Segmentation: k, silhouette, silhouette_by_k. Forecasts (all held-out): models (count
    # per chosen model), backtested, holdout_geometric_mean_ratio, holdout_ratio_p10/p90,
    # holdout_beaten, holdout_worse, holdout_worst_ratio, holdout_coverage. Timings in s.
    metrics = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    current_segments = models.BooleanField(default=False)
    current_forecasts = models.BooleanField(default=False)

    class Meta:
        ordering = ["-started_at", "-id"]
        get_latest_by = "started_at"
        permissions = [("refresh_predictions", "Can start an ML refresh")]
        constraints = [
            models.UniqueConstraint(
                fields=["current_segments"],
                condition=Q(current_segments=True),
                name="ml_one_current_segmentation",
            ),
            models.UniqueConstraint(
                fields=["current_forecasts"],
                condition=Q(current_forecasts=True),
                name="ml_one_current_forecast",
            ),
            # Only a finished, successful run can be what readers see.
            models.CheckConstraint(
                condition=Q(status="succeeded")
                | (Q(current_segments=False) & Q(current_forecasts=False)),
                name="ml_current_run_succeeded",
            ),
            models.CheckConstraint(condition=Q(horizon__gte=1), name="ml_horizon_positive"),
        ]
        indexes = [models.Index(fields=["status", "started_at"], name="ml_run_status_started")]

    def __str__(self) -> str:
        return f"ML run #{self.pk} ({self.status})"

    @property
    def is_current(self) -> bool:
        return self.current_segments or self.current_forecasts

    @property
    def kinds(self) -> list[str]:
        """The kinds of result this run computed."""
        return [self.only] if self.only else [self.Only.SEGMENTS, self.Only.FORECASTS]


class SegmentProfile(models.Model):
    """One segment of a run: its size, mean RFM and 0..1 percentile scores (1 = best)."""

    run = models.ForeignKey(PredictionRun, on_delete=models.CASCADE, related_name="profiles")
    name = models.CharField(max_length=64)
    size = models.PositiveIntegerField()
    recency_days = models.FloatField(help_text="Mean days since the last order.")
    frequency = models.FloatField(help_text="Mean number of orders.")
    monetary = models.FloatField(help_text="Mean spend.")
    recency_score = models.FloatField()
    frequency_score = models.FloatField()
    monetary_score = models.FloatField()

    class Meta:
        ordering = ["run", "-size", "name"]
        constraints = [
            models.UniqueConstraint(fields=["run", "name"], name="ml_profile_unique_per_run"),
            models.CheckConstraint(
                condition=Q(recency_days__gte=0), name="ml_profile_recency_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.size})"


class CustomerSegment(models.Model):
    run = models.ForeignKey(PredictionRun, on_delete=models.CASCADE, related_name="segments")
    customer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="ml_segments"
    )
    segment = models.CharField(max_length=64)
    recency_days = models.PositiveIntegerField()
    frequency = models.PositiveIntegerField()
    monetary = models.DecimalField(max_digits=16, decimal_places=2)

    class Meta:
        ordering = ["run", "customer"]
        constraints = [
            models.UniqueConstraint(fields=["run", "customer"], name="ml_segment_unique_customer"),
        ]
        indexes = [
            # The staff list: one run's members of one segment, by customer.
            models.Index(fields=["run", "segment", "customer"], name="ml_segment_run_name"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.segment}"


class ProductForecast(models.Model):
    run = models.ForeignKey(PredictionRun, on_delete=models.CASCADE, related_name="forecasts")
    product = models.ForeignKey(
        "orders.Product", on_delete=models.CASCADE, related_name="ml_forecasts"
    )
    freq = models.CharField(max_length=1, choices=PredictionRun.Freq.choices)
    horizon = models.PositiveSmallIntegerField()
    model = models.CharField(max_length=32, help_text="The model the backtest chose.")
    # [{"period": "2025-01-06", "value": 12.0, "lower": 8.0, "upper": 15.5}, ...]
    points = models.JSONField(default=list)
    # Scored on backtest windows the model choice never saw (nested rolling origin), so they
    # can be worse than seasonal naive's on the same windows.
    holdout_mae = models.FloatField(null=True, blank=True)
    holdout_wape = models.FloatField(null=True, blank=True)
    holdout_mase = models.FloatField(null=True, blank=True)
    holdout_naive_mae = models.FloatField(null=True, blank=True)
    holdout_naive_wape = models.FloatField(null=True, blank=True)
    holdout_naive_mase = models.FloatField(null=True, blank=True)
    holdout_coverage = models.FloatField(
        null=True, blank=True, help_text="Share of held-out actuals inside the 80 % interval."
    )

    class Meta:
        ordering = ["run", "product"]
        constraints = [
            models.UniqueConstraint(fields=["run", "product"], name="ml_forecast_unique_product"),
        ]

    def __str__(self) -> str:
        return f"{self.product_id}: {self.model}"

    @property
    def holdout_ratio(self) -> float | None:
        """Held-out MAE over seasonal naive's on the same windows; the rule of
        ``ml.forecasting.mae_ratio`` (0/0 is a tie, x/0 undefined)."""
        if self.holdout_mae is None or self.holdout_naive_mae is None:
            return None
        if self.holdout_naive_mae == 0:
            return 1.0 if self.holdout_mae == 0 else None
        return self.holdout_mae / self.holdout_naive_mae
