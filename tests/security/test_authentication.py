"""Password guessing, lockout and token lifetime (issue 19 §1).

The client address is REMOTE_ADDR unless TRUSTED_PROXY_COUNT says how many proxies sit in
front; guesses are limited per address (THROTTLE_AUTH) and per username (django-axes,
AXES_FAILURE_LIMIT), on the token endpoint and the admin login alike. Tokens expire after
TOKEN_TTL_DAYS, die with a password change or deactivation, and can be rotated by their owner.
"""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from rest_framework.throttling import ScopedRateThrottle

from tests.security.conftest import PASSWORD

pytestmark = pytest.mark.django_db
TOKEN = "/api/auth/token/"
ROTATE = "/api/auth/token/rotate/"
ADMIN_LOGIN = "/admin/login/"


@pytest.fixture
def auth_rate(settings, monkeypatch):
    def set_rate(rate: str):
        merged = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "auth": rate}
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": merged}
        monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", merged)

    return set_rate


def _guess(api, username="alice", password="guess", **extra):
    return api.post(TOKEN, {"username": username, "password": password}, **extra)


# --- the client address -----------------------------------------------------------------------
def test_a_new_x_forwarded_for_per_guess_does_not_evade_the_throttle(auth_rate, people):
    auth_rate("3/min")
    api = APIClient()
    # Different usernames: only the per-address throttle can stop this client.
    codes = [
        _guess(api, username=f"user{i}", HTTP_X_FORWARDED_FOR=f"10.0.0.{i}").status_code
        for i in range(4)
    ]
    assert codes == [400, 400, 400, 429]
    right = _guess(api, password=PASSWORD, HTTP_X_FORWARDED_FOR="10.9.9.9")
    assert right.status_code == 429
    assert "token" not in right.json()


def test_a_declared_proxy_makes_the_forwarded_address_the_client(auth_rate, people, settings):
    auth_rate("1/min")
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    api = APIClient()
    assert _guess(api, username="x", HTTP_X_FORWARDED_FOR="198.51.100.1").status_code == 400
    # Behind one trusted proxy, the address it appends is the client: a second client passes.
    assert _guess(api, username="y", HTTP_X_FORWARDED_FOR="198.51.100.2").status_code == 400
    assert _guess(api, username="z", HTTP_X_FORWARDED_FOR="198.51.100.1").status_code == 429


# --- per-username lockout -----------------------------------------------------------------------
def test_guesses_on_one_username_lock_it_out_from_any_address(people, settings):
    settings.AXES_FAILURE_LIMIT = 5
    # A fresh client address each time: the per-address throttle and lockout never fire.
    codes = [_guess(APIClient(REMOTE_ADDR=f"203.0.113.{i}")).status_code for i in range(5)]
    assert codes == [400, 400, 400, 400, 429]  # the fifth failure locks the account
    locked = _guess(APIClient(REMOTE_ADDR="203.0.113.99"), password=PASSWORD)
    assert locked.status_code == 429
    error = locked.json()["errors"][0]
    assert error["code"] == "locked_out"
    assert "token" not in locked.json()
    # Another account is not affected.
    assert _guess(APIClient(REMOTE_ADDR="203.0.113.99"), username="bob").status_code == 400


def test_axes_reset_lifts_the_lockout(people, settings):
    settings.AXES_FAILURE_LIMIT = 2
    for i in range(2):
        _guess(APIClient(REMOTE_ADDR=f"203.0.113.{i}"))
    assert _guess(APIClient(), password=PASSWORD).status_code == 429
    call_command("axes_reset_username", "alice")
    assert _guess(APIClient(), password=PASSWORD).status_code == 200


def test_admin_login_locks_out_after_repeated_failures(superuser, settings):
    settings.AXES_FAILURE_LIMIT = 5
    superuser.set_password(PASSWORD)
    superuser.save()
    client = Client()
    for _ in range(30):
        client.post(ADMIN_LOGIN, {"username": "root", "password": "wrong", "next": "/admin/"})
    response = client.post(ADMIN_LOGIN, {"username": "root", "password": PASSWORD})
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
    assert client.get("/admin/").status_code == 302  # still sent to the login page
    assert AccessAttempt.objects.filter(username="root").exists()


def test_admin_and_token_endpoint_share_one_failure_count(superuser, settings):
    settings.AXES_FAILURE_LIMIT = 4
    superuser.set_password(PASSWORD)
    superuser.save()
    for _ in range(4):
        Client().post(ADMIN_LOGIN, {"username": "root", "password": "wrong"})
    assert _guess(APIClient(), username="root", password=PASSWORD).status_code == 429


# --- token lifetime ------------------------------------------------------------------------------
def _token_for(user) -> APIClient:
    api = APIClient()
    key = api.post(TOKEN, {"username": user.username, "password": PASSWORD}).json()["token"]
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return api


def test_the_token_response_says_when_it_expires(people, settings):
    settings.TOKEN_TTL = timedelta(days=30)
    body = APIClient().post(TOKEN, {"username": "alice", "password": PASSWORD}).json()
    expires = timezone.datetime.fromisoformat(body["expires_at"])
    assert timedelta(days=29) < expires - timezone.now() <= timedelta(days=30)


def test_a_token_older_than_its_lifetime_is_refused_and_a_new_login_issues_a_fresh_one(
    people, settings
):
    settings.TOKEN_TTL = timedelta(days=30)
    api = _token_for(people["customer"])
    assert api.get("/api/orders/").status_code == 200
    Token.objects.filter(user=people["customer"]).update(
        created=timezone.now() - timedelta(days=31)
    )
    expired = api.get("/api/orders/")
    assert expired.status_code == 401
    assert "expired" in expired.json()["errors"][0]["detail"]
    assert _token_for(people["customer"]).get("/api/orders/").status_code == 200


def test_an_expired_token_does_not_open_metrics(people, settings):
    settings.TOKEN_TTL = timedelta(days=30)
    api = _token_for(people["superuser"].__class__.objects.get(pk=people["superuser"].pk))
    Token.objects.update(created=timezone.now() - timedelta(days=31))
    assert api.get("/metrics").status_code == 401


def test_a_password_change_revokes_the_users_tokens(people):
    alice = people["customer"]
    api = _token_for(alice)
    alice.set_password("a-new-password-2")
    alice.save()
    assert api.get("/api/orders/").status_code == 401
    assert not Token.objects.filter(user=alice).exists()


def test_a_hash_upgrade_on_login_is_not_a_password_change(people):
    alice = people["customer"]
    api = _token_for(alice)
    alice.check_password(PASSWORD)  # may re-hash and save; the password is the same
    alice.save()
    assert api.get("/api/orders/").status_code == 200


def test_deactivation_revokes_the_users_tokens(people):
    alice = people["customer"]
    api = _token_for(alice)
    alice.is_active = False
    alice.save()
    assert not Token.objects.filter(user=alice).exists()
    alice.is_active = True
    alice.save()
    assert api.get("/api/orders/").status_code == 401


def test_rotate_issues_a_new_token_and_kills_the_old_one(people):
    api = _token_for(people["customer"])
    old = api._credentials["HTTP_AUTHORIZATION"]
    response = api.post(ROTATE)
    assert response.status_code == 200
    new_key = response.json()["token"]
    assert f"Token {new_key}" != old
    assert api.get("/api/orders/").status_code == 401  # the old token
    api.credentials(HTTP_AUTHORIZATION=f"Token {new_key}")
    assert api.get("/api/orders/").status_code == 200


def test_rotate_needs_a_token(people):
    assert APIClient().post(ROTATE).status_code == 401
