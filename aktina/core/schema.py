"""The OpenAPI generator: drf-standardized-errors' error responses, only where they can occur."""

from __future__ import annotations

import re

from drf_standardized_errors.openapi import AutoSchema as StandardizedErrorsAutoSchema
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated


class AutoSchema(StandardizedErrorsAutoSchema):
    """The library documents a parse-error 400 and a 415 on every operation whose view has a
    JSON parser, GETs and body-less actions included. DRF parses lazily, so only an operation
    that takes a request body can answer either: the schema promises nothing it cannot do."""

    def _takes_body(self) -> bool:
        return self.method in ("POST", "PUT", "PATCH") and self.get_request_serializer() is not None

    def _should_add_parse_error_response(self) -> bool:
        return self._takes_body() and super()._should_add_parse_error_response()

    def _should_add_http415_error_response(self) -> bool:
        return self._takes_body() and super()._should_add_http415_error_response()

    def _get_extra_validation_errors(self) -> dict[str, set[str]]:
        # A list answers a 400 for `?page=` that is not a number and `?ordering=` naming a
        # field it does not order by (aktina.core.filters): say so.
        errors = dict(super()._get_extra_validation_errors())
        if self.method == "GET" and self._is_list_view():
            if getattr(self.view, "pagination_class", None) is not None:
                errors.setdefault("page", set()).add("invalid")
            backends = getattr(self.view, "filter_backends", None) or []
            if getattr(self.view, "ordering_fields", None) and any(
                getattr(b, "ordering_param", None) for b in backends
            ):
                errors.setdefault("ordering", set()).add("invalid")
        return errors

    def _should_add_http403_error_response(self) -> bool:
        # The library counts any permission class; one that only checks objects cannot
        # deny a list, and IsAuthenticated denies with a 401.
        if not super()._should_add_http403_error_response():
            return False
        checks = [type(p) for p in self.view.get_permissions()]
        if any(
            c.has_permission is not BasePermission.has_permission
            and not issubclass(c, (IsAuthenticated, AllowAny))
            for c in checks
        ):
            return True
        on_object = any(p["in"] == "path" for p in self._get_parameters())
        return on_object and any(
            c.has_object_permission is not BasePermission.has_object_permission for c in checks
        )


def attr_index_patterns(result, generator, request, public):
    """drf-spectacular postprocessing hook: drf-standardized-errors names list positions
    `items.INDEX.sku` in the `attr` enums, but responses say `items.1.sku`. A regex pattern
    states the truth, so validators (schemathesis, generated clients) accept real errors."""
    for component in result.get("components", {}).get("schemas", {}).values():
        attr = component.get("properties", {}).get("attr")
        values = attr.get("enum", []) if isinstance(attr, dict) else []
        if any(".INDEX" in v for v in values if isinstance(v, str)):
            alternatives = "|".join(
                re.escape(v).replace("INDEX", r"\d+") for v in values if isinstance(v, str)
            )
            component["properties"]["attr"] = {
                "type": "string",
                "pattern": f"^({alternatives})$",
                "description": attr.get("description", ""),
            }
    return result
