import datetime as dt
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.utils import timezone

from aktina.core import roles
from ml.models import CustomerSegment, PredictionRun, ProductForecast, SegmentProfile
from ml.selectors import dashboard_ml_summary
from tests.factories import ProductFactory, UserFactory

pytestmark = pytest.mark.django_db
LOCMEM = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


@pytest.fixture(autouse=True)
def memory_cache(settings):
    # Query counts below are the database's own; the shared DB cache would add its queries.
    settings.CACHES = LOCMEM
    cache.clear()
    yield
    cache.clear()


def make_run(*, customers: int = 3, products: int = 2, current: bool = True) -> PredictionRun:
    """A finished run with `customers` members (champions, then hibernating) and forecasts."""
    run = PredictionRun.objects.create(
        status=PredictionRun.Status.SUCCEEDED,
        started_at=timezone.now() - dt.timedelta(minutes=1),
        finished_at=timezone.now(),
        duration=dt.timedelta(seconds=42),
        customers=customers,
        products=products,
        metrics={
            "k": 2,
            "silhouette": 0.6,
            "holdout_geometric_mean_ratio": 0.8,
            "holdout_coverage": 0.79,
        },
        current_segments=current,
        current_forecasts=current,
    )
    champions = (customers + 1) // 2
    for name, size in (("champions", champions), ("hibernating", customers - champions)):
        SegmentProfile.objects.create(
            run=run,
            name=name,
            size=size,
            recency_days=5.0,
            frequency=7.0,
            monetary=900.0,
            recency_score=0.9,
            frequency_score=0.9,
            monetary_score=0.9,
        )
    for i in range(customers):
        CustomerSegment.objects.create(
            run=run,
            customer=UserFactory(role=roles.CUSTOMER),
            segment="champions" if i < champions else "hibernating",
            recency_days=i,
            frequency=i + 1,
            monetary=Decimal("10.00"),
        )
    for i in range(products):
        ProductForecast.objects.create(
            run=run,
            product=ProductFactory(),
            freq="W",
            horizon=2,
            model="exp_smoothing",
            points=[
                {"period": "2025-01-06", "value": 10.0 + i, "lower": 8.0, "upper": 12.0 + i},
                {"period": "2025-01-13", "value": 11.0, "lower": 9.0, "upper": 13.0},
            ],
            holdout_mae=2.0 + 3 * i,
            holdout_naive_mae=4.0,
            holdout_coverage=0.75,
        )
    return run


def test_anonymous_users_get_401(api):
    for url in ("/api/ml/segments/", "/api/ml/forecasts/", "/api/ml/runs/"):
        assert api.get(url).status_code == 401


def test_customers_see_no_segments_forecasts_or_runs(as_user, customer):
    # Business-wide data (the run's metrics, segment sizes) is staff data (issue 19).
    make_run()
    client = as_user(customer)
    assert client.get("/api/ml/segments/").status_code == 403
    assert client.get("/api/ml/forecasts/").status_code == 403
    assert client.get("/api/ml/runs/").status_code == 403


def test_staff_get_paginated_members_filtered_by_segment(as_user, make_user):
    make_run(customers=5)
    client = as_user(make_user(roles.MANAGER))

    everyone = client.get("/api/ml/segments/").json()["customers"]
    champions = client.get("/api/ml/segments/", {"segment": "champions"}).json()["customers"]

    assert everyone["count"] == 5
    assert champions["count"] == 3
    assert {m["segment"] for m in champions["results"]} == {"champions"}
    assert set(champions["results"][0]) == {
        "customer_id", "username", "segment", "recency_days", "frequency", "monetary",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("url", "param"), [("/api/ml/segments/", "segment"), ("/api/ml/forecasts/", "sku")]
)
def test_a_nul_character_in_a_filter_is_a_field_error_not_a_500(as_user, make_user, url, param):
    # Found by the schemathesis run on PostgreSQL, which cannot compare strings holding NUL.
    make_run()
    client = as_user(make_user(roles.MANAGER))

    response = client.get(url, {param: "champ\x00ions"})

    assert response.status_code == 400
    assert [e["attr"] for e in response.json()["errors"]] == [param]


def test_before_the_first_refresh_the_endpoints_are_empty(as_user, make_user):
    client = as_user(make_user(roles.OPERATIONS))
    assert client.get("/api/ml/segments/").json() == {
        "run": None,
        "segments": [],
        "customers": {"count": 0, "next": None, "previous": None, "results": []},
    }
    assert client.get("/api/ml/forecasts/").json()["results"] == []


def test_forecasts_list_points_and_intervals_and_filter_by_sku(as_user, make_user):
    run = make_run(products=3)
    client = as_user(make_user(roles.INVENTORY_MANAGER))
    sku = ProductForecast.objects.filter(run=run).select_related("product").first().product.sku

    listing = client.get("/api/ml/forecasts/").json()
    one = client.get("/api/ml/forecasts/", {"sku": sku}).json()

    assert listing["count"] == 3
    assert one["count"] == 1
    forecast = one["results"][0]
    assert forecast["sku"] == sku
    assert forecast["model"] == "exp_smoothing"
    # Held-out: a product can be worse than naive, and the API says so.
    ratios = {f["sku"]: f["holdout_ratio"] for f in listing["results"]}
    assert sorted(ratios.values()) == [0.5, 1.25, 2.0]
    assert forecast["holdout_coverage"] == 0.75
    assert forecast["points"][0] == {
        "period": "2025-01-06",
        "value": 10.0,
        "lower": 8.0,
        "upper": 12.0,
    }


def test_only_the_current_run_is_served(as_user, make_user):
    make_run(current=False)
    current = make_run()
    client = as_user(make_user(roles.MANAGER))

    assert client.get("/api/ml/segments/").json()["customers"]["count"] == 3
    forecasts = client.get("/api/ml/forecasts/").json()["results"]
    assert {f["product_id"] for f in forecasts} == set(
        ProductForecast.objects.filter(run=current).values_list("product_id", flat=True)
    )


def test_runs_list_for_staff_with_status_filter(as_user, make_user):
    make_run()
    PredictionRun.objects.create(status="failed", started_at=timezone.now(), error="boom")
    client = as_user(make_user(roles.OPERATIONS))

    runs = client.get("/api/ml/runs/").json()
    failed = client.get("/api/ml/runs/", {"status": "failed"}).json()

    assert runs["count"] == 2
    assert runs["results"][0]["status"] == "failed"  # newest first
    assert failed["count"] == 1
    assert failed["results"][0]["error"] == "boom"
    assert runs["results"][1]["duration_seconds"] == 42.0


def test_list_endpoints_run_a_fixed_number_of_queries(
    as_user, make_user, django_assert_num_queries
):
    make_run(customers=12, products=12)
    client = as_user(make_user(roles.OPERATIONS))

    # Cold caches: the run and its profiles / forecasts once, then members (count + page),
    # and the operator's permissions (user, groups) once.
    with django_assert_num_queries(6):
        assert client.get("/api/ml/segments/").status_code == 200
    with django_assert_num_queries(2):
        assert client.get("/api/ml/segments/").status_code == 200
    with django_assert_num_queries(2):
        assert client.get("/api/ml/forecasts/").status_code == 200
    with django_assert_num_queries(0):
        assert client.get("/api/ml/forecasts/", {"sku": "x"}).status_code == 200
    with django_assert_num_queries(2):
        assert client.get("/api/ml/runs/").status_code == 200


def test_dashboard_summary_lists_segments_and_the_biggest_forecasts():
    make_run(products=3)

    summary = dashboard_ml_summary(top=2)

    assert [s["name"] for s in summary["segments"]] == ["champions", "hibernating"]
    assert [f["total"] for f in summary["top_forecasts"]] == [23.0, 22.0]
    assert summary["top_forecasts"][0]["next"]["value"] == 12.0
    assert summary["holdout_geometric_mean_ratio"] == 0.8
    assert summary["holdout_coverage"] == 0.79


def test_admin_lists_runs_and_refresh_now_dispatches_the_job(client, superuser):
    from aktina.jobs.models import JobRun
    from ml.jobs import RefreshMLPredictions

    run = make_run()
    client.force_login(superuser)
    assert client.get("/admin/ml/predictionrun/").status_code == 200
    assert client.get(f"/admin/ml/predictionrun/{run.pk}/change/").status_code == 200

    response = client.post(
        "/admin/ml/predictionrun/", {"action": "refresh_now", "_selected_action": [run.pk]}
    )

    assert response.status_code == 302
    assert JobRun.objects.get().job_name == RefreshMLPredictions.job_name


def test_admin_runs_are_for_operations_not_managers(client, make_user):
    make_run()
    client.force_login(make_user(roles.MANAGER))
    assert client.get("/admin/ml/predictionrun/").status_code == 403
    client.force_login(make_user(roles.OPERATIONS))
    assert client.get("/admin/ml/predictionrun/").status_code == 200


def test_forecast_values_are_whole_units_in_the_api_and_on_the_dashboard(as_user, make_user):
    run = make_run(products=1)
    ProductForecast.objects.filter(run=run).update(
        points=[{"period": "2025-01-06", "value": 12.4449, "lower": 8.61, "upper": 15.2}]
    )
    client = as_user(make_user(roles.INVENTORY_MANAGER))

    point = client.get("/api/ml/forecasts/").json()["results"][0]["points"][0]
    summary = dashboard_ml_summary()

    assert point == {"period": "2025-01-06", "value": 12, "lower": 8, "upper": 16}
    assert summary["top_forecasts"][0]["next"] == point
    assert summary["top_forecasts"][0]["total"] == 12
