"""QueueWaitIncident moved from analytics to the console: its rows move with it."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor


@pytest.mark.django_db(transaction=True)
def test_moving_the_incident_model_keeps_its_rows():
    executor = MigrationExecutor(connection)
    executor.migrate([("analytics", "0001_initial"), ("console", None)])
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO analytics_queuewaitincident "
            "(queue, threshold_seconds, started_at, ended_at, peak_wait_seconds) "
            "VALUES ('urgent', 60, '2026-12-01 10:00:00', NULL, 75.5)"
        )
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

    from aktina.jobs.console.models import QueueWaitIncident

    incident = QueueWaitIncident.objects.get()
    assert (incident.queue, incident.threshold_seconds, incident.peak_wait_seconds) == (
        "urgent",
        60,
        75.5,
    )
    assert incident.ended_at is None
    assert "analytics_queuewaitincident" not in connection.introspection.table_names()
