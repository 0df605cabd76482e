"""QueueWaitIncident moves here from analytics with its rows; MonitoredTag is new.

The incident table is renamed, not copied: the state takes the model over as it was
(`analytics_queuewaitincident`), then AlterModelTable renames the table to the console's
name. analytics.0002 removes the model from analytics' state only.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("analytics", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="QueueWaitIncident",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("queue", models.CharField(max_length=64)),
                        ("threshold_seconds", models.PositiveIntegerField()),
                        ("started_at", models.DateTimeField()),
                        ("ended_at", models.DateTimeField(blank=True, null=True)),
                        ("peak_wait_seconds", models.FloatField(default=0)),
                    ],
                    options={
                        "ordering": ["-started_at"],
                        "db_table": "analytics_queuewaitincident",
                        "constraints": [
                            models.UniqueConstraint(
                                condition=models.Q(("ended_at__isnull", True)),
                                fields=("queue",),
                                name="an_one_open_incident",
                            )
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.AlterModelTable(name="queuewaitincident", table=None),
        migrations.CreateModel(
            name="MonitoredTag",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("tag", models.CharField(max_length=100, unique=True)),
                ("added_at", models.DateTimeField()),
                (
                    "added_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={"ordering": ["tag"]},
        ),
    ]
