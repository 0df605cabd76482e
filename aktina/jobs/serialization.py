"""Job arguments as JSON data, never code.

Model instances travel as `{"__model__": "app.model", "pk": ...}` and are fetched again when the
job runs, so a job sees the row as it is then, not as it was at dispatch. Only plain data,
models, dates, decimals, UUIDs and timedeltas are accepted; anything else is refused at dispatch.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from django.apps import apps
from django.db import models


class ModelMissing(LookupError):
    """A model instance a job was dispatched with no longer exists."""


_PLAIN = frozenset({type(None), bool, int, float, str})


def dump(value: Any) -> Any:
    if type(value) in _PLAIN or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, models.Model):
        if value.pk is None:
            raise TypeError(f"Cannot dispatch an unsaved {type(value).__name__}.")
        return {"__model__": value._meta.label_lower, "pk": dump(value.pk)}
    if isinstance(value, dt.datetime):
        return {"__datetime__": value.isoformat()}
    if isinstance(value, dt.date):
        return {"__date__": value.isoformat()}
    if isinstance(value, dt.timedelta):
        return {"__timedelta__": value.total_seconds()}
    if isinstance(value, Decimal):
        return {"__decimal__": str(value)}
    if isinstance(value, uuid.UUID):
        return {"__uuid__": str(value)}
    if isinstance(value, list | tuple):
        return [v if type(v) in _PLAIN else dump(v) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError("Job arguments may only use dicts with string keys.")
        return {"__dict__": {k: dump(v) for k, v in value.items()}}
    raise TypeError(f"Job arguments must be data or model instances, not {type(value).__name__}.")


def load(value: Any) -> Any:
    if isinstance(value, list):
        return [load(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "__model__" in value:
        return _fetch(value["__model__"], load(value["pk"]))
    if "__datetime__" in value:
        return dt.datetime.fromisoformat(value["__datetime__"])
    if "__date__" in value:
        return dt.date.fromisoformat(value["__date__"])
    if "__timedelta__" in value:
        return dt.timedelta(seconds=value["__timedelta__"])
    if "__decimal__" in value:
        return Decimal(value["__decimal__"])
    if "__uuid__" in value:
        return uuid.UUID(value["__uuid__"])
    if "__dict__" in value:
        return {k: load(v) for k, v in value["__dict__"].items()}
    raise ValueError(f"Unknown argument encoding: {sorted(value)}")


def _fetch(label: str, pk: Any) -> models.Model:
    try:
        model = apps.get_model(label)
    except (LookupError, ValueError) as exc:
        raise ModelMissing(f"Unknown model {label!r} in job arguments.") from exc
    try:
        return model._default_manager.get(pk=pk)
    except model.DoesNotExist as exc:
        raise ModelMissing(f"{model._meta.verbose_name} {pk} no longer exists.") from exc


def dump_arguments(args: tuple, kwargs: dict) -> dict:
    return {"args": dump(list(args)), "kwargs": {k: dump(v) for k, v in kwargs.items()}}


def load_arguments(payload: dict) -> tuple[list, dict]:
    args = load(payload.get("args", []))
    kwargs = {k: load(v) for k, v in payload.get("kwargs", {}).items()}
    return args, kwargs
