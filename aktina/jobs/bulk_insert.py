"""Many ledger rows in one INSERT statement, on SQLite and PostgreSQL alike.

`bulk_create` would split 10 000 runs into 271 statements on SQLite (Django keeps to 999
parameters per statement there) and spends most of its time preparing each field of each row.
Here the rows travel as one JSON array parameter that the database unpacks
(`json_each` on SQLite, `jsonb_array_elements` on PostgreSQL): one statement whatever the
count, on both. Columns whose value is the same for every row are ordinary parameters, prepared
by their fields as Django would; every column of the model is written, so a column added later
gets its default without a change here.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from django.db import connection, models
from django.db.models.base import ModelState

from aktina.jobs.models import JobRun, JobRunTag

# The run columns that may differ from run to run; every other column gets one value per INSERT.
RUN_VARYING = (
    "job_name",
    "queue",
    "priority",
    "payload",
    "tries",
    "timeout",
    "backoff",
    "retry_until",
    "unique_key",
    "unique_active",
    "unique_until",
    "unique_until_processing",
    "available_at",
    "retry_of_id",
)


def runs_insert(rows: Sequence[dict[str, Any]], *, shared: dict[str, Any]) -> list[JobRun]:
    """Insert one run per `rows` item (its RUN_VARYING values, Python values) with `shared`
    values (and every other column's default) in one statement; returns the runs, saved, in
    the order of `rows`."""
    if not rows:
        return []
    fields = [f for f in JobRun._meta.concrete_fields if not f.primary_key]
    by_name = {f.attname: f for f in fields}
    constants: dict[str, Any] = {}
    for f in fields:
        if f.attname in RUN_VARYING:
            continue
        if f.attname in shared:
            constants[f.attname] = shared[f.attname]
        elif not f.has_default() and f.db_default is not models.NOT_PROVIDED:
            continue  # the database's own default applies
        else:
            constants[f.attname] = f.get_default()  # None, or "" for a text column
    # A column equal in every row (the queue, tries, ... of one job class; `available_at` when
    # nothing is delayed) is one parameter too: the database unpacks only what differs.
    first = rows[0]
    names = [n for n in RUN_VARYING if any(row[n] != first[n] for row in rows)]
    constants.update({n: first[n] for n in RUN_VARYING if n not in names})
    varying = [by_name[name] for name in names]
    when = [i for i, f in enumerate(varying) if f.get_internal_type() == "DateTimeField"]
    as_text = _datetime_as_text()
    values = []
    for row in rows:
        line = [row[name] for name in names]
        for i in when:
            if line[i] is not None:
                line[i] = as_text(line[i])
        values.append(line)
    ids = _insert(
        JobRun._meta.db_table,
        varying=varying,
        rows=values,
        constants=[(by_name[name], value) for name, value in constants.items()],
        returning=True,
    )
    # Ids come from one statement in row order, so in ascending order (sequence or rowid).
    ids.sort()
    return [_saved_run(constants, row, run_id) for run_id, row in zip(ids, rows, strict=True)]


def _saved_run(constants: dict[str, Any], row: dict[str, Any], run_id: int) -> JobRun:
    """A JobRun as `Model.from_db` builds one, without the per-field setattr of `__init__`
    (a third of the cost of a bulk dispatch): the instance holds every concrete column."""
    run = JobRun.__new__(JobRun)
    state = run.__dict__
    state.update(constants)
    state.update(row)
    state["id"] = run_id
    run._state = ModelState()
    run._state.adding = False
    run._state.db = connection.alias
    return run


def tags_insert(pairs: Sequence[tuple[int, str]]) -> None:
    """Insert (run id, tag) rows in one statement."""
    if not pairs:
        return
    run_field = JobRunTag._meta.get_field("run")
    tag_field = JobRunTag._meta.get_field("tag")
    _insert(
        JobRunTag._meta.db_table,
        varying=[run_field, tag_field],
        rows=[list(pair) for pair in pairs],
        constants=[],
        returning=False,
    )


def _insert(
    table: str,
    *,
    varying: list[models.Field],
    rows: list[list[Any]],
    constants: list[tuple[models.Field, Any]],
    returning: bool,
) -> list[int]:
    qn = connection.ops.quote_name
    columns = [qn(f.column) for f in varying] + [qn(f.column) for f, _ in constants]
    postgres = connection.vendor == "postgresql"
    selects = [_unpack(f, i, postgres=postgres) for i, f in enumerate(varying)]
    params: list[Any] = []
    for f, value in constants:
        selects.append(f"CAST(%s AS {_db_type(f)})" if postgres else "%s")
        params.append(f.get_db_prep_save(value, connection))
    if postgres:
        source = "jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS e(v, n) ORDER BY e.n"
    else:
        source = "json_each(%s) ORDER BY key"
    params.append(json.dumps(rows, separators=(",", ":")))
    sql = (
        f"INSERT INTO {qn(table)} ({', '.join(columns)}) SELECT {', '.join(selects)} FROM {source}"
    )
    if returning:
        sql += f" RETURNING {qn('id')}"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()] if returning else []


def _unpack(field: models.Field, i: int, *, postgres: bool) -> str:
    if not postgres:
        return f"json_extract(value, '$[{i}]')"
    if field.get_internal_type() == "JSONField":
        return f"NULLIF(e.v->{i}, 'null'::jsonb)"
    return f"(e.v->>{i})::{_db_type(field)}"


def _db_type(field: models.Field) -> str:
    # varchar(200) -> varchar: the column keeps its own length check.
    return field.db_type(connection).split("(")[0]


def _datetime_as_text():
    """How a datetime travels in the JSON rows: ISO 8601 with its offset for PostgreSQL's
    timestamptz, the backend's own text form for SQLite."""
    if connection.vendor == "postgresql":
        return dt.datetime.isoformat
    return connection.ops.adapt_datetimefield_value
