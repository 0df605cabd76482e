"""What the console keeps of its own: queue-wait incidents and the tags operators monitor."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class QueueWaitIncident(models.Model):
    """A period during which a queue's oldest waiting run waited longer than its threshold, or
    (`unserved`) the queue had due runs and no live cluster serving it."""

    queue = models.CharField(max_length=64)
    threshold_seconds = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    peak_wait_seconds = models.FloatField(default=0)
    # Opened because no live cluster served the queue (its due runs would never start).
    unserved = models.BooleanField(default=False)

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["queue"], condition=Q(ended_at__isnull=True), name="an_one_open_incident"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.queue} since {self.started_at:%Y-%m-%d %H:%M}"


class MonitoredTag(models.Model):
    """A tag (`order:1234`, `customer:42`) pinned by an operator: its runs get a page of their
    own (Horizon's monitored tags). One row per tag, shared by every operator."""

    tag = models.CharField(max_length=100, unique=True)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    added_at = models.DateTimeField()

    class Meta:
        ordering = ["tag"]

    def __str__(self) -> str:
        return self.tag
