"""Two small inline-SVG charts for the comparison report: no JavaScript, no CDN, readable offline and in a PR.

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


def interval_chart(title: str, intervals: Sequence[Interval], *, width: int = 720) -> str:
    """Per-task deltas (points) with their confidence intervals; a filled dot marks a significant change."""
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
        "delta vs baseline, points (filled: significant after Holm)</text></svg>"
    )
    return "".join(parts)


def grouped_bars(
    title: str, groups: Sequence[str], series: Sequence[tuple[str, Sequence[float | None]]], *, width: int = 720
) -> str:
    """Bars per group (task type), one colour per series (run); a missing value draws no bar."""
    height, top, bottom, left = 300, 34, 70, 50
    values = [v for _, vs in series for v in vs if v is not None and math.isfinite(v)]
    high = max([*values, 1.0]) * 1.08
    low = min([*values, 0.0])
    low = min(0.0, low * 1.08)
    plot_bottom, plot_top = height - bottom, top
    group_width = (width - left - 10) / max(len(groups), 1)
    bar_width = group_width * 0.8 / max(len(series), 1)

    def y(value: float) -> float:
        return plot_bottom - (value - low) / (high - low) * (plot_bottom - plot_top)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" {_FONT}>',
        f"<title>{escape_html(title)}</title>",
        f'<text x="{width / 2}" y="18" text-anchor="middle" font-weight="bold">{escape_html(title)}</text>',
    ]
    for tick in _ticks(low, high):
        parts.append(
            f'<line x1="{left}" x2="{width - 10}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#eee"/>'
            f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" fill="#555">{tick:g}</text>'
        )
    for g, group in enumerate(groups):
        start = left + g * group_width + group_width * 0.1
        for s, (name, series_values) in enumerate(series):
            value = series_values[g]
            if value is None or not math.isfinite(value):
                continue
            top_y, base_y = y(max(value, 0.0)), y(min(value, 0.0))
            parts.append(
                f'<rect class="bar" x="{start + s * bar_width:.1f}" y="{top_y:.1f}" width="{bar_width * 0.92:.1f}" '
                f'height="{max(base_y - top_y, 0.5):.1f}" fill="{PALETTE[s % len(PALETTE)]}">'
                f"<title>{escape_html(name)} · {escape_html(group)}: {value:.2f}</title></rect>"
            )
        parts.append(
            f'<text x="{start + group_width * 0.4:.1f}" y="{plot_bottom + 16}" text-anchor="middle">'
            f"{escape_html(group)}</text>"
        )
    for s, (name, _) in enumerate(series):
        legend_y = plot_bottom + 34 + 14 * (s // 3)
        legend_x = left + (s % 3) * 220
        parts.append(
            f'<rect x="{legend_x}" y="{legend_y - 9}" width="10" height="10" fill="{PALETTE[s % len(PALETTE)]}"/>'
            f'<text x="{legend_x + 14}" y="{legend_y}">{escape_html(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
