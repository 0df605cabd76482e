"""GET /api/health/: can this process reach its database, cache and broker?"""

from __future__ import annotations

import time

from django.core.cache import cache
from django.db import connection
from django_q.brokers import get_broker
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.response import Response


def _check(probe) -> dict:
    started = time.perf_counter()
    try:
        probe()
    except Exception as exc:  # noqa: BLE001 - any failure means "down"; the type tells why
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 1)}


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _cache() -> None:
    cache.set("health:probe", "1", 10)
    if cache.get("health:probe") != "1":
        raise RuntimeError("cache did not return what was stored")


def _broker() -> None:
    broker = get_broker()
    if not broker.ping():
        raise RuntimeError("broker did not answer")
    broker.queue_size()


CHECKS = {"database": _database, "cache": _cache, "broker": _broker}

_jobs_info = inline_serializer(
    "HealthJobs",
    {
        "clusters": serializers.ListField(
            child=inline_serializer(
                "HealthCluster",
                {
                    "name": serializers.CharField(),
                    "host": serializers.CharField(),
                    "queues": serializers.ListField(child=serializers.CharField()),
                    "last_seen": serializers.DateTimeField(),
                },
            )
        ),
        "unserved_queues": serializers.ListField(child=serializers.CharField()),
    },
)

_component = inline_serializer(
    "HealthComponent",
    {
        "ok": serializers.BooleanField(),
        "ms": serializers.FloatField(required=False),
        "error": serializers.CharField(required=False),
    },
)


@extend_schema(
    responses={
        200: inline_serializer(
            "Health",
            {
                "status": serializers.CharField(),
                **{name: _component for name in CHECKS},
                "jobs": _jobs_info,
            },
        ),
        503: inline_serializer(
            "HealthDown",
            {"status": serializers.CharField(), **{name: _component for name in CHECKS}},
        ),
    },
    auth=[],
)
@api_view(["GET"])
@authentication_classes([])
@permission_classes([AllowAny])
def health(request):
    report = health_report()
    # Error details stay out of the body: it is public, and exception text can hold secrets.
    return Response(report, status=200 if report["status"] == "ok" else 503)


def health_report() -> dict:
    """Every check's outcome, and "ok" or "degraded" overall (the endpoint's body)."""
    results = {name: _check(probe) for name, probe in CHECKS.items()}
    ok = all(r["ok"] for r in results.values())
    return {"status": "ok" if ok else "degraded", **results, "jobs": _jobs(results)}


def _jobs(results: dict) -> dict:
    """Live clusters and the queues with due runs that none serves. Informational: a web host
    is healthy without a cluster, so this does not change `status`."""
    if not results["database"]["ok"]:
        return {"clusters": [], "unserved_queues": []}
    from aktina.jobs.processes import clusters_alive, queues_unserved

    try:
        clusters = clusters_alive()
        unserved = queues_unserved()
    except Exception:  # noqa: BLE001 - the database checks above say whether it is down
        return {"clusters": [], "unserved_queues": []}
    return {
        "clusters": [
            {
                "name": c["name"],
                "host": c["host"],
                "queues": c["queues"],
                "last_seen": c["last_seen"].isoformat(),
            }
            for c in clusters
        ],
        "unserved_queues": unserved,
    }
