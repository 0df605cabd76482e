"""`manage.py seed_demo` leaves a first dashboard that shows history, segments and forecasts."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from analytics.models import DailyMetric
from ml.models import PredictionRun
from orders.models import Order

pytestmark = pytest.mark.django_db


def test_seed_demo_on_a_fresh_database_leaves_metrics_and_one_current_run(client, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    assert not Order.objects.exists()
    out = StringIO()

    call_command(
        "seed_demo", "--if-empty", "--orders", "400", "--password", "demo-pass-1", stdout=out
    )

    assert "ML run #" in out.getvalue()
    run = PredictionRun.objects.get()
    assert run.current_segments
    assert run.current_forecasts
    assert run.order_lines > 400
    assert DailyMetric.objects.count() > 200  # two years of history, by day
    manager = get_user_model().objects.get(username="manager")
    client.force_login(manager)
    html = client.get("/dashboard/").content.decode()
    assert "run <code>manage.py refresh_ml</code>" not in html
    assert 'id="ml-forecasts"' in html
    assert 'id="ml-holdout"' in html


def test_seed_demo_again_adds_nothing_and_computes_nothing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    call_command("seed_demo", "--orders", "50", "--password", "demo-pass-1", stdout=StringIO())
    out = StringIO()

    call_command("seed_demo", "--if-empty", "--orders", "50", stdout=out)

    assert "not seeding" in out.getvalue()
    assert PredictionRun.objects.count() == 1
