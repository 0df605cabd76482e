import os

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from aktina.core import roles
from tests.factories import UserFactory

IS_POSTGRES = os.environ.get("DATABASE_URL", "").startswith(("postgres", "pgsql"))
IS_REDIS_CACHE = bool(os.environ.get("REDIS_URL"))


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    # PBKDF2 costs ~0.5 s per user on these machines; tests create users by the hundred.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_cache(request):
    """Every test starts with an empty cache.

    Redis keeps what a test wrote whatever happens to the test's transaction, and the database
    cache table is not flushed after transactional tests; cached dashboards, ML summaries and
    throttle counters from one test must not leak into the next.
    """
    for name in ("transactional_db", "db"):
        if name in request.fixturenames:
            request.getfixturevalue(name)  # the database first: the cache may live in it
            break
    else:
        if request.node.get_closest_marker("django_db") is None and not IS_REDIS_CACHE:
            yield  # no database, so no database cache to touch
            return
    cache.clear()
    yield


@pytest.fixture(autouse=True)
def _no_cached_pauses():
    # A pause a test wrote is rolled back with it; this process's cached set must go too.
    from aktina.jobs.pausing import queues_paused_forget

    queues_paused_forget()
    yield
    queues_paused_forget()


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def make_user(db):
    def make(role: str | None = None, **kwargs):
        user = UserFactory(**kwargs)
        if role:
            user.groups.add(user.groups.model.objects.get(name=role))
            if role != roles.CUSTOMER:
                user.is_staff = True
                user.save(update_fields=["is_staff"])
        return user

    return make


@pytest.fixture
def superuser(db):
    return UserFactory(username="root", is_staff=True, is_superuser=True)


@pytest.fixture
def customer(make_user):
    return make_user(roles.CUSTOMER, username="alice")


@pytest.fixture
def as_user(api):
    def login(user):
        api.force_authenticate(user)
        return api

    return login


@pytest.fixture
def live_cluster(transactional_db, tmp_path):
    """Start real qcluster processes: `live_cluster()` or `live_cluster(name="urgent", **env)`."""
    from tests.live import LiveCluster

    started = []

    def start(name: str | None = None, **env):
        cluster = LiveCluster(tmp_path, name=name, **env).start()
        started.append(cluster)
        return cluster

    yield start
    for cluster in started:
        cluster.stop()
