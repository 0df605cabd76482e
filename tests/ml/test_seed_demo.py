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


def test_seeded_history_has_a_spread_of_lead_times_and_a_shortage_tile_that_agrees(settings):
    """The dashboard of a fresh demo: p50 != p95 (the seed used a constant two days), and
    the share of orders in inventory shortage is one the tile shows as what the funnel
    counts (a single shortage among thousands showed as "0 %" beside a funnel with one)."""
    from analytics.selectors import dashboard_build

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    call_command("seed_demo", "--orders", "3000", "--password", "demo-pass-1", stdout=StringIO())

    data = dashboard_build()

    lead = data["lead_time"]
    assert lead["p95_seconds"] > 1.8 * lead["p50_seconds"]
    assert 6 * 3600 < lead["p50_seconds"] < 48 * 3600
    funnel = {row["status"]: row["orders"] for row in data["status_funnel"]}
    placed = sum(funnel.values())
    assert funnel[Order.Status.INVENTORY_SHORTAGE] >= 1
    assert data["shortage_rate"] == round(funnel[Order.Status.INVENTORY_SHORTAGE] / placed, 4)
    assert round(data["shortage_rate"] * 100) >= 1  # the tile's whole percent is not 0
    assert funnel[Order.Status.COMPLETED] < placed  # recent orders are still in flight
