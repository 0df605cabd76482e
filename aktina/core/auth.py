from drf_standardized_errors.openapi_validation_errors import extend_validation_errors
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle


# AuthTokenSerializer reports wrong credentials as a non-field error with this code.
@extend_validation_errors(["authorization"], field_name="non_field_errors", methods=["post"])
class TokenObtainView(ObtainAuthToken):
    """POST username + password, get {"token": ...}. Throttled against password guessing."""

    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "auth"
    # ObtainAuthToken names DRF's plain JSONParser; ours limits the depth (aktina.core.parsers).
    parser_classes = api_settings.DEFAULT_PARSER_CLASSES
