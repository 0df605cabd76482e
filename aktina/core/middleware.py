"""Every /api/ URL answers JSON, also where Django (not DRF) produced the error page."""

from __future__ import annotations

from http import HTTPStatus

from rest_framework.exceptions import NotFound

from aktina.core.api import error_json_response

API_PREFIX = "/api/"


class ApiJsonErrorsMiddleware:
    """Replace Django's HTML error pages under /api/ (an unmatched URL such as
    `/api/orders/1.5/cancel/`, a 500) with the API's error shape. Sits below CommonMiddleware,
    so APPEND_SLASH still redirects `/api/orders` first."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            response.status_code >= 400
            and request.path.startswith(API_PREFIX)
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            status = HTTPStatus(response.status_code)
            return error_json_response(
                status_code=status.value,
                # DRF's wording, so a 404 reads the same whichever layer produced it.
                detail=str(NotFound.default_detail) if status == 404 else f"{status.phrase}.",
            )
        return response
