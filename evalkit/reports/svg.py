"""Small inline-SVG charts for the comparison report: no JavaScript, no CDN, readable offline and in a PR.

Every label goes through ``escape_html``: the charts carry model and task names from result files.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from evalkit.reports.escape import escape_html

PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#ff9da6", "#9d755d")
_FONT = 'font-family="system-ui, sans-serif" font-size="12"'


@dataclass(frozen=True)
class Interval:
    label: str
    value: float  # points
    low: float | None
    high: float | None
    significant: bool


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    span = max(high - low, 1e-9)
    raw = span / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = min((m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw), default=raw)
    first = math.ceil(low / step) * step
    return [round(first + i * step, 10) for i in range(int((high - first) / step) + 1)]


def interval_chart(
    title: str,
    intervals: Sequence[Interval],
    *,
    width: int = 720,
    footer: str = "delta vs baseline, points (filled: significant after Holm)",
) -> str:
    """Deltas (points) with their confidence intervals, one row each; a filled dot marks a significant change."""
    row_height, label_width, top, bottom = 22, 220, 34, 44
    height = top + bottom + row_height * max(len(intervals), 1)
    values = [0.0] + [v for i in intervals for v in (i.value, i.low, i.high) if v is not None and math.isfinite(v)]
    low, high = min(values), max(values)
    pad = max((high - low) * 0.08, 0.05)
    low, high = low - pad, high + pad
    plot_left, plot_right = label_width, width - 20

    def x(value: float) -> float:
        return plot_left + (value - low) / (high - low) * (plot_right - plot_left)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" {_FONT}>',
        f"<title>{escape_html(title)}</title>",
        f'<text x="{width / 2}" y="18" text-anchor="middle" font-weight="bold">{escape_html(title)}</text>',
    ]
    for tick in _ticks(low, high):
        parts.append(
            f'<line x1="{x(tick):.1f}" x2="{x(tick):.1f}" y1="{top - 6}" y2="{height - bottom}" stroke="#ddd"/>'
            f'<text x="{x(tick):.1f}" y="{height - bottom + 16}" text-anchor="middle" fill="#555">{tick:g}</text>'
        )
    parts.append(f'<line x1="{x(0):.1f}" x2="{x(0):.1f}" y1="{top - 6}" y2="{height - bottom}" stroke="#333"/>')
    for row, interval in enumerate(intervals):
        y = top + row_height * row + row_height / 2
        colour = PALETTE[3] if interval.value < 0 else PALETTE[0]
        parts.append(
            f'<text x="{label_width - 8}" y="{y + 4:.1f}" text-anchor="end">{escape_html(interval.label)}</text>'
        )
        if interval.low is not None and interval.high is not None:
            parts.append(
                f'<line class="ci" x1="{x(interval.low):.1f}" x2="{x(interval.high):.1f}" y1="{y:.1f}" y2="{y:.1f}" '
                f'stroke="{colour}" stroke-width="2"/>'
            )
        fill = colour if interval.significant else "white"
        parts.append(
            f'<circle class="point" cx="{x(interval.value):.1f}" cy="{y:.1f}" r="4.5" fill="{fill}" '
            f'stroke="{colour}" stroke-width="2"><title>{escape_html(interval.label)}: {interval.value:+.2f}'
            f"{' (significant)' if interval.significant else ''}</title></circle>"
        )
    parts.append(
        f'<text x="{(plot_left + plot_right) / 2}" y="{height - 4}" text-anchor="middle" fill="#555">'
        f"{escape_html(footer)}</text></svg>"
    )
    return "".join(parts)


@dataclass(frozen=True)
class Point:
    label: str
    x: float  # texts per second
    y: float  # mean main score, points
    baseline: bool = False


def _log_ticks(low: float, high: float) -> list[float]:
    """1, 2, 5 × powers of ten inside [low, high] (a log axis)."""
    ticks = [
        m * 10.0**e for e in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1) for m in (1, 2, 5)
    ]
    return [t for t in ticks if low <= t <= high]


def scatter(title: str, points: Sequence[Point], *, x_label: str, y_label: str, width: int = 720) -> str:
    """One labelled point per run (the baseline drawn hollow); x on a log scale when it spans a factor over 20."""
    height, top, bottom, left, right = 340, 34, 52, 64, 150
    xs, ys = [p.x for p in points], [p.y for p in points]
    log_x = min(xs) > 0 and max(xs) / min(xs) > 20
    x_low, x_high = (min(xs) / 1.3, max(xs) * 1.3) if log_x else (0.0, max(xs) * 1.15 or 1.0)
    y_pad = max((max(ys) - min(ys)) * 0.15, 0.5)
    y_low, y_high = min(ys) - y_pad, max(ys) + y_pad
    plot_right, plot_bottom = width - right, height - bottom

    def x(value: float) -> float:
        share = (math.log(value / x_low) / math.log(x_high / x_low)) if log_x else (value - x_low) / (x_high - x_low)
        return left + share * (plot_right - left)

    def y(value: float) -> float:
        return plot_bottom - (value - y_low) / (y_high - y_low) * (plot_bottom - top)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart scatter" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" {_FONT}>',
        f"<title>{escape_html(title)}</title>",
        f'<text x="{width / 2}" y="18" text-anchor="middle" font-weight="bold">{escape_html(title)}</text>',
    ]
    for tick in _log_ticks(x_low, x_high) if log_x else _ticks(x_low, x_high):
        parts.append(
            f'<line x1="{x(tick):.1f}" x2="{x(tick):.1f}" y1="{top}" y2="{plot_bottom}" stroke="#eee"/>'
            f'<text x="{x(tick):.1f}" y="{plot_bottom + 16}" text-anchor="middle" fill="#555">{tick:g}</text>'
        )
    for tick in _ticks(y_low, y_high):
        parts.append(
            f'<line x1="{left}" x2="{plot_right}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#eee"/>'
            f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" fill="#555">{tick:g}</text>'
        )
    for index, point in enumerate(points):
        colour = PALETTE[index % len(PALETTE)]
        fill = "white" if point.baseline else colour
        parts.append(
            f'<circle class="run-point" cx="{x(point.x):.1f}" cy="{y(point.y):.1f}" r="5" fill="{fill}" '
            f'stroke="{colour}" stroke-width="2"><title>{escape_html(point.label)}: {point.x:,.1f} texts/s, '
            f"{point.y:.2f}</title></circle>"
            f'<text class="run-label" x="{x(point.x) + 8:.1f}" y="{y(point.y) + 4:.1f}">'
            f"{escape_html(point.label)}</text>"
        )
    scale = " (log scale)" if log_x else ""
    parts.append(
        f'<text x="{(left + plot_right) / 2}" y="{height - 8}" text-anchor="middle" fill="#555">'
        f"{escape_html(x_label)}{scale}</text>"
        f'<text x="14" y="{(top + plot_bottom) / 2}" text-anchor="middle" fill="#555" '
        f'transform="rotate(-90 14 {(top + plot_bottom) / 2})">{escape_html(y_label)}</text></svg>'
    )
    return "".join(parts)
