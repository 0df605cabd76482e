from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.throttling import ScopedRateThrottle


class TokenObtainView(ObtainAuthToken):
    """POST username + password, get {"token": ...}. Throttled against password guessing."""

    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "auth"
