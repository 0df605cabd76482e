import pytest
from django.core.management import call_command


@pytest.fixture(autouse=True)
def analytics_db(db):
    from django.contrib.auth.models import Group

    from aktina.core.roles import roles_sync

    # The database cache needs its table; migrations do not create it.
    call_command("createcachetable", verbosity=0)
    # Roles are synced by the last app's post_migrate, which only fires for apps with models.
    if not Group.objects.exists():
        roles_sync()
