"""Small statistics shared by the dashboard, `jobs stats` and the benchmarks (pure Python)."""

from __future__ import annotations

import math
from collections.abc import Iterable


def percentile(values: Iterable[float], p: float, *, ndigits: int | None = 1) -> float | None:
    """Nearest-rank percentile (the smallest value with at least p % of the values at or below
    it); None for no data. Rounded to `ndigits` (None: as measured)."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = min(len(ordered), max(1, math.ceil(p / 100 * len(ordered))))
    value = ordered[rank - 1]
    return value if ndigits is None else round(value, ndigits)
