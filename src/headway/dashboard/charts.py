"""Small time-series charts as server-rendered SVG (no JavaScript chart library).

A chart is a line (and the area under it) scaled to its own maximum, with the latest
value as text next to it; ``aria-label`` carries the title and the latest value for
screen readers. Missing points (no requests in an interval: no p95) break the line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

from headway.dashboard.views import NONE

WIDTH, HEIGHT, PAD = 240.0, 56.0, 2.0


@dataclass(frozen=True, slots=True)
class Chart:
    title: str
    unit: str
    latest: str
    svg: Markup


def fmt(value: float | None, unit: str = "", whole: bool = False) -> str:
    if value is None:
        return NONE
    if whole or abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text}{unit}"


def _segments(values: Sequence[float | None], top: float) -> list[list[tuple[float, float]]]:
    n = max(len(values) - 1, 1)
    segments: list[list[tuple[float, float]]] = [[]]
    for i, v in enumerate(values):
        if v is None:
            if segments[-1]:
                segments.append([])
            continue
        x = PAD + (WIDTH - 2 * PAD) * i / n
        y = HEIGHT - PAD - (HEIGHT - 2 * PAD) * (v / top if top else 0.0)
        segments[-1].append((round(x, 1), round(y, 1)))
    return [s for s in segments if s]


def sparkline(
    title: str, values: Sequence[float | None], unit: str = "", *, whole: bool = False
) -> Chart:
    """``whole``: a count (shown without decimals)."""
    known = [v for v in values if v is not None]
    latest = fmt(known[-1] if known else None, unit, whole)
    top = max(known, default=0.0) or 1.0
    parts: list[str] = []
    for seg in _segments(values, top):
        line = " ".join(f"{x},{y}" for x, y in seg)
        if len(seg) > 1:
            area = f"{seg[0][0]},{HEIGHT - PAD} {line} {seg[-1][0]},{HEIGHT - PAD}"
            parts.append(f'<polygon class="area" points="{area}"/>')
            parts.append(f'<polyline class="line" points="{line}"/>')
        else:
            x, y = seg[0]
            parts.append(f'<circle class="dot" cx="{x}" cy="{y}" r="2"/>')
    if not parts:
        parts.append(f'<text class="empty" x="{WIDTH / 2}" y="{HEIGHT / 2}">collecting…</text>')
    label = escape(f"{title}: latest {latest}, peak {fmt(max(known, default=None), unit, whole)}")
    # only numbers and the escaped label are interpolated: safe to mark as HTML
    svg = Markup(  # noqa: S704
        f'<svg class="spark" viewBox="0 0 {WIDTH:g} {HEIGHT:g}" preserveAspectRatio="none" '
        f'role="img" aria-label="{label}">'
        f'<line class="base" x1="0" y1="{HEIGHT - PAD}" x2="{WIDTH:g}" y2="{HEIGHT - PAD}"/>'
        + "".join(parts)
        + "</svg>"
    )
    return Chart(title, unit, latest, svg)
