import pytest

from aktina.core import roles
from aktina.notifications.services import notification_send
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
URL = "/api/notifications/"


@pytest.fixture
def alice(db):
    return UserFactory(username="alice", role=roles.CUSTOMER)


@pytest.fixture
def bob(db):
    return UserFactory(username="bob", role=roles.CUSTOMER)


def test_inbox_lists_only_own_notifications_and_filters_unread(api, alice, bob):
    read = notification_send(recipient=alice, kind="k", subject="old")
    notification_send(recipient=alice, kind="k", subject="new")
    notification_send(recipient=bob, kind="k", subject="bob's")
    api.force_authenticate(alice)
    assert api.post(f"{URL}{read.pk}/read/").status_code == 200
    subjects = [n["subject"] for n in api.get(URL).json()["results"]]
    assert sorted(subjects) == ["new", "old"]
    unread = api.get(URL, {"unread": "true"}).json()["results"]
    assert [n["subject"] for n in unread] == ["new"]


def test_mark_read_is_idempotent(api, alice):
    n = notification_send(recipient=alice, kind="k", subject="s")
    api.force_authenticate(alice)
    first = api.post(f"{URL}{n.pk}/read/").json()["read_at"]
    assert api.post(f"{URL}{n.pk}/read/").json()["read_at"] == first


def test_someone_elses_notification_is_403(api, alice, bob):
    n = notification_send(recipient=bob, kind="k", subject="s")
    api.force_authenticate(alice)
    assert api.get(f"{URL}{n.pk}/").status_code == 403
    assert api.post(f"{URL}{n.pk}/read/").status_code == 403
    n.refresh_from_db()
    assert n.read_at is None


def test_anonymous_is_401(api):
    assert api.get(URL).status_code == 401


def test_list_query_count_is_fixed(api, alice, django_assert_max_num_queries):
    for i in range(30):
        notification_send(recipient=alice, kind="k", subject=str(i))
    api.force_authenticate(alice)
    # The page and its count, and the permission lookups (user, groups).
    with django_assert_max_num_queries(5):
        assert api.get(URL).json()["count"] == 30
