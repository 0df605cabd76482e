"""Named queues and the django-q2 clusters that serve them."""

from __future__ import annotations

from django.conf import settings


def cluster_for(queue: str) -> str:
    """The django-q2 cluster (broker list) whose workers take this queue's messages."""
    if queue not in settings.JOBS_QUEUES:
        raise ValueError(f"Unknown queue {queue!r}; configured: {', '.join(settings.JOBS_QUEUES)}")
    if queue in settings.JOBS_DEDICATED_QUEUES:
        return queue
    return settings.JOBS_DEFAULT_CLUSTER


def queues_served_by(cluster: str) -> list[str]:
    return [q for q in settings.JOBS_QUEUES if cluster_for(q) == cluster]
