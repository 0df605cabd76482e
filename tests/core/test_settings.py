import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _settings_with(env: dict, expr: str) -> str:
    code = f"import django, os; django.setup(); from django.conf import settings; print({expr})"
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "DATABASE_", "REDIS_", "Q_", "JOBS_"))
    }
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**base, "DJANGO_SETTINGS_MODULE": "aktina.settings", **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode:
        return "ERROR: " + out.stderr.strip().splitlines()[-1]
    return out.stdout.strip()


def test_database_defaults_to_sqlite_with_immediate_transactions():
    out = _settings_with({}, "settings.DATABASES['default']['OPTIONS']['transaction_mode']")
    assert out == "IMMEDIATE"


def test_database_url_selects_postgresql_with_persistent_connections():
    env = {"DATABASE_URL": "postgres://u@127.0.0.1:5432/x", "DJANGO_SECRET_KEY": "k" * 50}
    expr = "settings.DATABASES['default']['ENGINE'], settings.DATABASES['default']['CONN_MAX_AGE']"
    assert _settings_with(env, expr) == "django.db.backends.postgresql 600"


def test_server_database_without_secret_key_is_refused():
    out = _settings_with({"DATABASE_URL": "postgres://u@127.0.0.1/x"}, "1")
    assert out.startswith("ERROR")
    assert "DJANGO_SECRET_KEY" in out


def test_redis_url_switches_cache_to_redis_otherwise_database_cache():
    expr = "settings.CACHES['default']['BACKEND']"
    assert _settings_with({}, expr) == "django.core.cache.backends.db.DatabaseCache"
    redis = _settings_with({"REDIS_URL": "redis://127.0.0.1:6379/3"}, expr)
    assert redis == "django_redis.cache.RedisCache"


def test_debug_is_off_unless_asked():
    assert _settings_with({}, "settings.DEBUG") == "False"
    assert _settings_with({"DJANGO_DEBUG": "true"}, "settings.DEBUG") == "True"


def test_every_queue_has_an_alt_cluster_and_dedicated_queues_are_validated():
    expr = "sorted(settings.Q_CLUSTER['ALT_CLUSTERS']) == sorted(settings.JOBS_QUEUES)"
    assert _settings_with({}, expr) == "True"
    out = _settings_with({"JOBS_DEDICATED_QUEUES": "nope"}, "1")
    assert out.startswith("ERROR")
    assert "nope" in out


def test_the_job_ledger_is_the_broker_whatever_the_cache():
    expr = "settings.Q_CLUSTER['broker_class']"
    ledger = "aktina.jobs.broker.LedgerBroker"
    assert _settings_with({}, expr) == ledger
    assert _settings_with({"REDIS_URL": "redis://127.0.0.1:6379/4"}, expr) == ledger


@pytest.mark.parametrize("cluster", ["urgent", "ml-processing", "default"])
def test_qcluster_name_configuration_loads_for_every_queue(cluster):
    # django-q2 reads Q_CLUSTER_NAME at import and pops ALT_CLUSTERS; it crashes without them.
    expr = "__import__('django_q.conf', fromlist=['Conf']).Conf.CLUSTER_NAME"
    assert _settings_with({"Q_CLUSTER_NAME": cluster}, expr) == cluster


def test_check_deploy_is_clean_with_production_settings():
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_",))},
        "DJANGO_SECRET_KEY": "x7#Lk2!pQ9vZ@m4Rt8&wYc1^Hn6*Ub3(Ej5)Gs0_Fa-Dq=Ko+Ix~Pl",
        "DJANGO_ALLOWED_HOSTS": "scm.example.com",
        "DJANGO_SECURE_SSL_REDIRECT": "true",
        "DJANGO_SECURE_COOKIES": "true",
        "DJANGO_SECURE_HSTS_SECONDS": "31536000",
        "DJANGO_SECURE_HSTS_PRELOAD": "true",
        "DJANGO_SETTINGS_MODULE": "aktina.settings",
    }
    out = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_environment_variable_the_settings_read_is_in_env_example():
    import re

    source = (ROOT / "aktina" / "settings.py").read_text()
    read = set(re.findall(r'env(?:\.[a-z]+)?\(\s*"([A-Z][A-Z0-9_]+)"', source))
    assert len(read) > 40  # the pattern still finds the settings' reads
    example = (ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", example, flags=re.MULTILINE))
    assert sorted(read - listed) == []


@pytest.mark.parametrize("rate", ["abc", "5/fortnight", "/min", "5/"])
def test_a_throttle_rate_drf_cannot_parse_is_refused_at_start_up(rate):
    # DRF parses a rate only on the first throttled request, which then answers 500.
    out = _settings_with({"THROTTLE_AUTH": rate}, "1")
    assert out.startswith("ERROR")
    assert "THROTTLE_AUTH" in out
    for good in ("20/min", "5/s", "100/hour", "1000/day", "3/minutes"):
        assert _settings_with({"THROTTLE_AUTH": good}, "1") == "1"


@pytest.mark.parametrize("value", ["urgent", "nope=30"])
def test_queue_wait_overrides_are_pairs_of_known_queues(value):
    out = _settings_with({"QUEUE_WAIT_ALERT_SECONDS_BY_QUEUE": value}, "1")
    assert out.startswith("ERROR")
    assert "QUEUE_WAIT_ALERT_SECONDS_BY_QUEUE" in out
