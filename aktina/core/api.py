"""API conventions shared by every app: one error format for every 4xx, never a 500.

Every error body is drf-standardized-errors' shape (see docs/architecture.md for why):
`{"type": "validation_error" | "client_error" | "server_error",
  "errors": [{"code": "...", "detail": "...", "attr": "items.1.sku" | null}]}`.
"""

from __future__ import annotations

from dataclasses import asdict

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import JsonResponse
from drf_spectacular.utils import OpenApiResponse
from drf_standardized_errors.handler import ExceptionHandler
from drf_standardized_errors.types import CLIENT_ERROR, SERVER_ERROR, Error, ErrorResponse
from rest_framework import exceptions, permissions, serializers, status

CLIENT_ERROR_CODES = {
    status.HTTP_404_NOT_FOUND: "not_found",
    status.HTTP_405_METHOD_NOT_ALLOWED: "method_not_allowed",
    status.HTTP_413_REQUEST_ENTITY_TOO_LARGE: "request_too_large",
}


class HasPerm(permissions.BasePermission):
    """`HasPerm.of("orders.view_stock")`: a model permission, granted by the user's role
    (aktina.core.roles). `is_staff` alone grants nothing."""

    perm = ""

    @classmethod
    def of(cls, perm: str):
        return type(f"HasPerm_{perm}", (cls,), {"perm": perm})

    def has_permission(self, request, view):
        return bool(request.user and request.user.has_perm(self.perm))


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the resource's current state."
    default_code = "conflict"


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "request_too_large"


class AktinaExceptionHandler(ExceptionHandler):
    def convert_known_exceptions(self, exc: Exception) -> Exception:
        if isinstance(exc, RequestDataTooBig):
            # Django raises it when the body is first read (the parser, the idempotency
            # fingerprint); unconverted it was a 500.
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            return RequestTooLarge(f"The request body exceeds the limit of {limit} bytes.")
        if isinstance(exc, DjangoPermissionDenied) and exc.args:
            # A service's refusal says which permission it needs; the library's conversion
            # would replace it with DRF's generic sentence.
            return exceptions.PermissionDenied(str(exc))
        if isinstance(exc, DjangoValidationError):
            # A service's model validation reached the view: the client's input error, in
            # the same shape as a serializer's (`attr` names the field).
            detail = exc.message_dict if hasattr(exc, "error_dict") else exc.messages
            return exceptions.ValidationError(detail)
        return super().convert_known_exceptions(exc)


def error_body(*, status_code: int, detail: str, code: str | None = None) -> dict:
    """The error shape, for responses made outside DRF's views (Django's 404, the parser)."""
    code = code or CLIENT_ERROR_CODES.get(status_code, "error")
    error = Error(code=code, detail=detail, attr=None)
    kind = CLIENT_ERROR if status_code < 500 else SERVER_ERROR
    return asdict(ErrorResponse(kind, [error]))


def error_json_response(*, status_code: int, detail: str, code: str | None = None) -> JsonResponse:
    return JsonResponse(
        error_body(status_code=status_code, detail=detail, code=code), status=status_code
    )


class _ClientError(serializers.Serializer):
    code = serializers.CharField()
    detail = serializers.CharField()
    attr = serializers.CharField(allow_null=True)


class ClientErrorResponse(serializers.Serializer):
    """409 and 422: one error, `attr` null."""

    type = serializers.ChoiceField(choices=[CLIENT_ERROR])
    errors = _ClientError(many=True)


def client_error_response(description: str) -> OpenApiResponse:
    """For extend_schema(responses={409: ...}): the codes the library does not add itself."""
    return OpenApiResponse(response=ClientErrorResponse, description=description)
