"""Authentication: the client's address, password-guessing limits, and tokens that expire.

- The client address is REMOTE_ADDR unless TRUSTED_PROXY_COUNT declares how many proxies sit
  in front (DRF's NUM_PROXIES; django-axes reads the same through `client_ip`).
- Guesses are throttled per address (scope `auth`) and locked out per username or address by
  django-axes, on this endpoint and the admin login alike (one failure count).
- Tokens are DRF's, with a lifetime (TOKEN_TTL): an expired token is refused and replaced at
  the next login; a password change or deactivation deletes the user's tokens; the owner can
  rotate one (`POST /api/auth/token/rotate/`).
"""

from __future__ import annotations

from axes.backends import AxesStandaloneBackend
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_cool_off
from django.http import HttpRequest
from drf_spectacular.utils import extend_schema
from drf_standardized_errors.openapi_validation_errors import extend_validation_errors
from rest_framework import exceptions, permissions, serializers, status
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from aktina.core.api import client_error_response
from aktina.core.tokens import ExpiringTokenAuthentication, token_expires_at, token_issue


def client_ip(request: HttpRequest) -> str | None:
    """REMOTE_ADDR, or with N trusted proxies the N-th address from the right of
    X-Forwarded-For (what the outermost trusted proxy saw). The same rule as DRF's throttles."""
    remote = request.META.get("REMOTE_ADDR")
    proxies = api_settings.NUM_PROXIES or 0
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    if proxies <= 0 or not forwarded:
        return remote
    addresses = [a.strip() for a in forwarded.split(",") if a.strip()]
    if not addresses:
        return remote
    return addresses[-min(proxies, len(addresses))]


class LockoutBackend(AxesStandaloneBackend):
    """django-axes' lockout check, first in AUTHENTICATION_BACKENDS. A call without a request
    (a shell, the test client's `login`) is nobody guessing over HTTP: it is not checked."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


class LockedOut(exceptions.APIException):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = "locked_out"


def _locked_out(request) -> LockedOut:
    cool_off = get_cool_off(request)
    minutes = int(cool_off.total_seconds() // 60) if cool_off else None
    when = f"try again in {minutes} minutes" if minutes else "ask an operator to lift it"
    exc = LockedOut(f"Too many failed logins for this account or address: {when}.")
    if cool_off:
        exc.wait = cool_off.total_seconds()
    return exc


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField()
    expires_at = serializers.DateTimeField()


def _token_response(token: Token) -> Response:
    return Response(
        TokenSerializer({"token": token.key, "expires_at": token_expires_at(token)}).data
    )


# AuthTokenSerializer reports wrong credentials as a non-field error with this code.
@extend_validation_errors(["authorization"], field_name="non_field_errors", methods=["post"])
class TokenObtainView(ObtainAuthToken):
    """POST username + password, get {"token", "expires_at"}. Throttled per client address;
    locked out (429, code `locked_out`) after AXES_FAILURE_LIMIT failures per username or
    address, the admin login's failures included."""

    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "auth"
    # ObtainAuthToken names DRF's plain JSONParser; ours limits the depth (aktina.core.parsers).
    parser_classes = api_settings.DEFAULT_PARSER_CLASSES

    @extend_schema(
        responses={
            200: TokenSerializer,
            429: client_error_response(
                "Too many requests from this address (code `throttled`, see Retry-After), or "
                "too many failed logins for this username or address (code `locked_out`)."
            ),
        }
    )
    def post(self, request, *args, **kwargs):
        username = request.data.get("username") if hasattr(request.data, "get") else None
        credentials = {"username": username if isinstance(username, str) else None}
        if not AxesProxyHandler.is_allowed(request, credentials):
            raise _locked_out(request)
        serializer = self.get_serializer(data=request.data)
        if not serializer.is_valid():
            # This failure may have been the one that locks the account.
            if not AxesProxyHandler.is_allowed(request, credentials):
                raise _locked_out(request)
            raise exceptions.ValidationError(serializer.errors)
        return _token_response(token_issue(user=serializer.validated_data["user"]))


class TokenRotateView(APIView):
    """A new token for the caller; the one used for this call stops working."""

    authentication_classes = [ExpiringTokenAuthentication]
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=None, responses={200: TokenSerializer})
    def post(self, request):
        return _token_response(token_issue(user=request.user, replace=True))
