"""QueueWaitIncident now belongs to the job console (aktina.jobs.console): its table and rows
went with it in console.0001; here it leaves analytics' state only."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0001_initial"),
        ("console", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="QueueWaitIncident")],
            database_operations=[],
        ),
    ]
