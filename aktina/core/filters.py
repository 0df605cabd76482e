"""Query parameters that refuse what they cannot read (a 400 naming the parameter) instead
of ignoring it, and datetimes PostgreSQL can store."""

from __future__ import annotations

import datetime as dt

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django_filters.fields import IsoDateTimeField
from rest_framework import exceptions
from rest_framework.filters import OrderingFilter
from rest_framework.pagination import PageNumberPagination

# PostgreSQL refuses a UTC offset beyond +-15:59 ("time zone displacement out of range").
MAX_UTC_OFFSET = dt.timedelta(hours=15, minutes=59)


class UtcIsoDateTimeField(IsoDateTimeField):
    """ISO 8601, with an offset within +-15:59, converted to UTC (and so within years 1-9999
    in UTC too)."""

    def to_python(self, value):
        value = super().to_python(value)
        if value is None:
            return value
        offset = value.utcoffset()
        if offset is not None and abs(offset) > MAX_UTC_OFFSET:
            raise ValidationError(
                "The UTC offset must be between -15:59 and +15:59.", code="invalid"
            )
        try:
            return value.astimezone(dt.UTC)
        except OverflowError:
            raise ValidationError(
                "The date is out of range once converted to UTC.", code="invalid"
            ) from None


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


class StrictBooleanField(forms.Field):
    """true/false (also 1/0, yes/no, any case); anything else is an error, not "no filter"."""

    default_error_messages = {"invalid": "Must be true or false."}
    TRUE = {"true", "1", "yes"}
    FALSE = {"false", "0", "no"}

    def to_python(self, value):
        if value in (None, ""):
            return None
        text = str(value).strip().lower()
        if text in self.TRUE:
            return True
        if text in self.FALSE:
            return False
        raise ValidationError(self.error_messages["invalid"], code="invalid")


class StrictBooleanFilter(django_filters.BooleanFilter):
    field_class = StrictBooleanField


class StrictOrderingFilter(OrderingFilter):
    """`?ordering=` with a field the endpoint does not order by is a 400 naming the choices."""

    def remove_invalid_fields(self, queryset, fields, view, request):
        valid = super().remove_invalid_fields(queryset, fields, view, request)
        invalid = [term for term in fields if term not in valid]
        if invalid:
            allowed = sorted(name for name, _ in self.get_valid_fields(queryset, view, {}))
            raise exceptions.ValidationError(
                {
                    self.ordering_param: [
                        f"Cannot order by {', '.join(invalid)}; use one of {allowed}."
                    ]
                }
            )
        return valid


class Pagination(PageNumberPagination):
    """`?page=` that is not a positive number is a 400 (a number past the end stays a 404)."""

    def paginate_queryset(self, queryset, request, view=None):
        page = request.query_params.get(self.page_query_param)
        numeric = page is not None and page.isdigit() and int(page) >= 1
        if page is not None and page not in self.last_page_strings and not numeric:
            raise exceptions.ValidationError(
                {self.page_query_param: ["Must be a positive whole number."]}
            )
        return super().paginate_queryset(queryset, request, view)
