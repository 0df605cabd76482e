"""The dispatch spec: everything the ledger needs to write one run, as one typed value.

Every front door builds one (`Job.to_spec()`, `@task` enqueue, raw django-q2 tasks, operator
retries) and `aktina.jobs.dispatching` turns it into a `JobRun` row. Chain links and batch
callbacks wait in the ledger as JSON (`JobRun.chain`, `JobBatch.then_spec`, ...): `to_stored()`
writes that form and `from_stored()` reads it back, so a stored link becomes the same run as a
direct dispatch of its job would.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any


@dataclasses.dataclass(slots=True, kw_only=True)
class DispatchSpec:
    job: str  # registered job name, or `task:<module path>` for a @task function
    queue: str
    payload: dict
    tries: int = 1
    timeout: int = 60
    backoff: tuple[float, ...] = (0.0,)
    retry_for: float | None = None  # seconds after dispatch during which retries may happen
    unique_key: str | None = None
    unique_for: float | None = None  # seconds the key may block new dispatches at most
    unique_until_processing: bool = False
    delay: float = 0.0  # seconds from dispatch until the run is due
    priority: int = 0
    tags: tuple[str, ...] = ()
    retry_of: int | None = None  # the run an operator retried as this one

    def replace(self, **changes: Any) -> DispatchSpec:
        return dataclasses.replace(self, **changes)

    def to_stored(self) -> dict:
        """The JSON form kept in the ledger for chain links and batch callbacks."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["backoff"] = list(self.backoff)
        data["tags"] = list(self.tags)
        return data

    @classmethod
    def from_stored(cls, data: Mapping[str, Any]) -> DispatchSpec:
        """Read a stored spec back (older rows may lack newer keys: their defaults apply)."""
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known and v is not None}
        values["backoff"] = tuple(float(b) for b in values.get("backoff") or (0.0,))
        values["tags"] = tuple(values.get("tags") or ())
        values["delay"] = float(values.get("delay") or 0.0)
        return cls(**values)

    @classmethod
    def coerce(cls, spec: DispatchSpec | Mapping[str, Any]) -> DispatchSpec:
        """A spec as given: built now (a DispatchSpec) or read from the ledger (its JSON)."""
        return spec if isinstance(spec, DispatchSpec) else cls.from_stored(spec)
