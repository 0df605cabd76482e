"""Inputs that crashed or were silently ignored (issue 19 §3): every one is a 400 in the error
format. The tz-offset cases also run on PostgreSQL, where the 500 was."""

import pytest

from aktina.core import roles

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_api(api, make_user):
    api.force_authenticate(make_user(roles.OPERATIONS))
    return api


@pytest.mark.parametrize(
    "value",
    [
        "2026-01-01T00:00:00+16:00",
        "2026-01-01T00:00:00-16:00",
        "2026-01-01T00:00:00+23:59",
        "0001-01-01T00:00:00+15:00",  # in range, but before year 1 in UTC
        "9999-12-31T23:59:00-15:00",  # after year 9999 in UTC
    ],
)
@pytest.mark.parametrize("name", ["created_after", "created_before"])
def test_a_datetime_filter_out_of_range_is_a_400(staff_api, name, value):
    response = staff_api.get("/api/orders/", {name: value})
    assert response.status_code == 400, response.content[:300]
    error = response.json()["errors"][0]
    assert error["attr"] == name


def test_a_datetime_filter_with_an_offset_in_range_filters_in_utc(staff_api, customer):
    import datetime as dt

    from tests.factories import OrderFactory

    at = dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC)
    OrderFactory(customer=customer, created_at=at)
    # 13:00+15:00 is 22:00 the day before in UTC: the order (12:00 UTC) is after it.
    found = staff_api.get("/api/orders/", {"created_after": "2026-01-01T13:00:00+15:00"})
    assert found.status_code == 200
    assert found.json()["count"] == 1
    missed = staff_api.get("/api/orders/", {"created_after": "2026-01-01T13:00:00-01:00"})
    assert missed.json()["count"] == 0


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/products/", {"in_stock": "maybe"}),
        ("/api/products/", {"min_price": "cheap"}),
        ("/api/products/", {"ordering": "no_such_field"}),
        ("/api/orders/", {"priority": "whenever"}),
        ("/api/orders/", {"ordering": "password"}),
        ("/api/orders/", {"created_on": "yesterday"}),
        ("/api/notifications/", {"unread": "perhaps"}),
    ],
)
def test_a_typed_query_parameter_with_garbage_is_a_400(staff_api, path, params):
    response = staff_api.get(path, params)
    assert response.status_code == 400, response.content[:300]
    assert response.json()["errors"][0]["attr"] == next(iter(params))
