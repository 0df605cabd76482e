"""Create the database cache's table with the schema, so `migrate` alone sets up a database.

DRF's throttles and the dashboards use the cache from the first request; without this a fresh
deployment that forgot `createcachetable` would fail them. With Redis configured this is a
no-op (createcachetable only acts on database caches).
"""

from django.core.management import call_command
from django.db import migrations


def create_cache_table(apps, schema_editor):
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):
    dependencies = []

    operations = [migrations.RunPython(create_cache_table, migrations.RunPython.noop)]
