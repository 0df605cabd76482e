"""Charts drawn as inline SVG on the server: no JavaScript, no CDN, works offline.

Every chart is an <svg> with a stable id and class "chart"; bars carry `data-value` and a
<title> tooltip, so people can hover and tests can read them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

GREEN, RED, BLUE = "#2e7d32", "#c62828", "#1565c0"


def _fmt(value) -> str:
    return (
        f"{value:,.0f}"
        if abs(float(value)) >= 100
        else f"{float(value):,.2f}".rstrip("0").rstrip(".")
    )


def bar_chart(
    points: Sequence[tuple[str, float]],
    *,
    chart_id: str,
    title: str,
    color: str = BLUE,
    width: int = 760,
    height: int = 180,
    label_every: int = 7,
    fmt: Callable[[float], str] = _fmt,
) -> SafeString:
    """Vertical bars, one per (label, value)."""
    return stacked_bar_chart(
        [(label, (value,)) for label, value in points],
        chart_id=chart_id, title=title, colors=(color,), series=(title,), width=width,
        height=height, label_every=label_every, fmt=fmt,
    )  # fmt: skip


def stacked_bar_chart(
    points: Sequence[tuple[str, Sequence[float]]],
    *,
    chart_id: str,
    title: str,
    colors: Sequence[str],
    series: Sequence[str],
    width: int = 760,
    height: int = 180,
    label_every: int = 6,
    fmt: Callable[[float], str] = _fmt,
    axis: bool = True,
) -> SafeString:
    left, bottom, top = (48, 18, 8) if axis else (0, 0, 0)
    plot_w, plot_h = width - left - 4, height - bottom - top
    peak = max((float(sum(v)) for _, v in points), default=0) or 1.0
    step = plot_w / max(1, len(points))
    bar_w = max(1.0, step * 0.8)
    parts = [
        f'<svg id="{escape(chart_id)}" class="chart" role="img" aria-label="{escape(title)}" '
        f'width="100%" viewBox="0 0 {width} {height}" preserveAspectRatio="none" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
    ]
    if axis:
        base = top + plot_h
        parts.append(
            f'<line x1="{left}" y1="{base}" x2="{width - 4}" y2="{base}" stroke="#999"/>'
            f'<text x="{left - 4}" y="{top + 10}" text-anchor="end" class="axis">{fmt(peak)}</text>'
            f'<text x="{left - 4}" y="{base}" text-anchor="end" class="axis">0</text>'
        )
    for i, (label, values) in enumerate(points):
        x = left + i * step + (step - bar_w) / 2
        y = top + plot_h
        total = float(sum(values))
        tip = escape(
            f"{label}: " + ", ".join(f"{n} {fmt(v)}" for n, v in zip(series, values, strict=True))
        )
        parts.append(f'<g class="bar" data-label="{escape(label)}" data-value="{total:g}">')
        parts.append(f"<title>{tip}</title>")
        for value, color in zip(values, colors, strict=True):
            h = plot_h * float(value) / peak
            y -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{color}"/>'
            )
        parts.append("</g>")
        if axis and label_every and i % label_every == 0:
            parts.append(f'<text x="{x:.1f}" y="{height - 4}" class="axis">{escape(label)}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))


def funnel_chart(
    steps: Sequence[tuple[str, int]], *, chart_id: str, title: str, width: int = 460
) -> SafeString:
    """Horizontal bars, one row per (label, count)."""
    row, label_w = 22, 150
    height = row * len(steps) + 4
    peak = max((v for _, v in steps), default=0) or 1
    parts = [
        f'<svg id="{escape(chart_id)}" class="chart" role="img" aria-label="{escape(title)}" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
    ]
    for i, (label, value) in enumerate(steps):
        y = 2 + i * row
        w = (width - label_w - 60) * value / peak
        parts.append(
            f'<g class="bar" data-label="{escape(label)}" data-value="{value}">'
            f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end">{escape(label)}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row - 6}" fill="{BLUE}"/>'
            f'<text x="{label_w + w + 4:.1f}" y="{y + 15}">{value}</text></g>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))
