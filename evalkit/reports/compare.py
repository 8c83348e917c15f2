"""Ablation comparison: every run against one baseline on every task they share, as Markdown or one HTML file.

Each run's comparison with the baseline is one family for Holm's correction (the question "is this ablation
better or worse than the baseline?"), as in ``evalkit diff``. The HTML report is self-contained: inline CSS and SVG,
no script, no network; every string from a results file is escaped.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from evalkit.reports.compare_speed import (
    SPEED_NOTE,
    TYPE_NOTE,
    SpeedRow,
    TypeDelta,
    rate_cell,
    ratio_cell,
    speed_cells,
    speed_rows,
    type_cells,
    type_deltas,
)
from evalkit.reports.diff import (
    DiffSettings,
    RunDiff,
    TaskComparison,
    comparison_cells,
    describe_settings,
    diff_runs,
)
from evalkit.reports.escape import escape_html, escape_markdown
from evalkit.reports.runs import Run
from evalkit.reports.svg import Interval, Point, interval_chart, scatter


def compare_runs(baseline: Run, runs: Sequence[Run], settings: DiffSettings | None = None) -> list[RunDiff]:
    return [diff_runs(baseline, run, settings, shared_only=True) for run in runs]


def _marker(task: TaskComparison) -> str:
    """▲/▼ for a significant change (after Holm), · for none, ? when untested."""
    if task.test is None:
        return "?"
    if task.significant:
        return "▲" if task.delta > 0 else "▼"
    return "·"


def _tally(diff: RunDiff) -> tuple[int, int, int]:
    """Tasks significantly better / not significantly different or untested / significantly worse."""
    better = sum(1 for t in diff.tasks if t.significant and t.delta > 0)
    worse = sum(1 for t in diff.tasks if t.significant and t.delta < 0)
    return better, len(diff.tasks) - better - worse, worse


def _run_label(run: Run, baseline: Run) -> str:
    """The shortest honest name: what the run's label adds to the baseline's (``+pooling_cls``, its mteb
    experiment) for an ablation of the same model, the revision for another revision, else model@revision."""
    if run.model != baseline.model:
        return run.label
    if run.revision.startswith(baseline.revision) and run.revision != baseline.revision:
        return run.revision[len(baseline.revision) :]
    return run.revision


def _all_tasks(diffs: Sequence[RunDiff]) -> list[str]:
    return sorted({t.task for d in diffs for t in d.tasks})


def format_compare_markdown(diffs: Sequence[RunDiff]) -> str:
    baseline = diffs[0].baseline
    tasks = _all_tasks(diffs)
    labels = [_run_label(d.candidate, baseline) for d in diffs]
    lines = [
        f"### Ablations against {escape_markdown(baseline.label)}",
        "",
        f"{escape_markdown(describe_settings(diffs[0].settings, len(tasks)))}; each run is one family. "
        "▲/▼ significant after Holm, · not significant, ? untested (no per-item scores).",
        "",
        "| task | baseline | " + " | ".join(escape_markdown(label) for label in labels) + " |",
        "| --- | ---: | " + " | ".join("---:" for _ in labels) + " |",
    ]
    for name in tasks:
        found = [next((t for t in d.tasks if t.task == name), None) for d in diffs]
        base_score = next(t.baseline for t in found if t is not None)
        cells = [
            f"{100 * t.candidate:.2f} ({100 * t.delta:+.2f}) {_marker(t)}" if t is not None else "—" for t in found
        ]
        lines.append(f"| {escape_markdown(name)} | {100 * base_score:.2f} | " + " | ".join(cells) + " |")
    tallies = [_tally(d) for d in diffs]
    lines.append("| *better / same / worse* | | " + " | ".join(f"{b} / {s} / {w}" for b, s, w in tallies) + " |")
    speeds = speed_rows(diffs, labels)
    lines.append(
        f"| *texts/s (× baseline)* | {_speed_cell(speeds[0])} | " + " | ".join(map(_speed_cell, speeds[1:])) + " |"
    )
    lines += _markdown_speed(speeds) + _markdown_types(diffs, labels)
    for diff, label in zip(diffs, labels, strict=True):
        lines += [
            "",
            f"#### {escape_markdown(label)}: intervals and tests",
            "",
            "| task | delta | CI | p | p (Holm) | W/T/L (items) |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for task in diff.tasks:
            row = comparison_cells(task)
            cells = [row[c] or "—" for c in ("delta", "CI", "p", "p (Holm)", "W/T/L")]
            lines.append(f"| {escape_markdown(task.task)} | " + " | ".join(escape_markdown(c) for c in cells) + " |")
    lines.append("")
    return "\n".join(lines)


def _speed_cell(row: SpeedRow) -> str:
    """texts/s, with the ratio to the baseline's for a run ("n/a" where either was not measured)."""
    rate = rate_cell(row.throughput.texts_per_s if row.throughput else None)
    return rate if row.score_delta is None or row.ratio is None else f"{rate} ({ratio_cell(row)})"


def _markdown_speed(speeds: list[SpeedRow]) -> list[str]:
    columns = list(speed_cells(speeds[0]))
    lines = ["", "#### Speed and score", "", escape_markdown(SPEED_NOTE), ""]
    lines += ["| " + " | ".join(columns) + " |", "| --- | " + " | ".join("---:" for _ in columns[1:]) + " |"]
    for row in speeds:
        lines.append("| " + " | ".join(escape_markdown(c) or "—" for c in speed_cells(row).values()) + " |")
    return lines


def _markdown_types(diffs: Sequence[RunDiff], labels: list[str]) -> list[str]:
    lines = ["", "#### Per-type deltas vs the baseline", "", escape_markdown(TYPE_NOTE) + ".", ""]
    lines += ["| run | type | tasks | delta | CI |", "| --- | --- | ---: | ---: | ---: |"]
    for diff, label in zip(diffs, labels, strict=True):
        for found in type_deltas(diff):
            delta, interval = type_cells(found)
            cells = [label, found.task_type, str(len(found.tasks)), delta, interval]
            lines.append("| " + " | ".join(escape_markdown(c) for c in cells) + " |")
    return lines


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; max-width: 1100px; }
table { border-collapse: collapse; margin: 1rem 0; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
td.up { background: #e6f4ea; } td.down { background: #fce8e6; }
.meta { color: #555; font-size: 0.9rem; }
figure { margin: 1.5rem 0; }
"""


def _html_rows(diffs: Sequence[RunDiff], tasks: list[str], labels: list[str]) -> list[str]:
    rows = []
    for name in tasks:
        found = [next((t for t in d.tasks if t.task == name), None) for d in diffs]
        first = next(t for t in found if t is not None)
        cells = [_html_cell(t) for t in found]
        rows.append(
            f"<tr><td>{escape_html(name)} <small>({escape_html(first.task_type)}, "
            f"{escape_html(first.main_score)})</small></td><td>{100 * first.baseline:.2f}</td>{''.join(cells)}</tr>"
        )
    tallies = "".join(f"<td>{b} / {s} / {w}</td>" for b, s, w in (_tally(d) for d in diffs))
    rows.append(f"<tr><td><em>better / same / worse</em></td><td></td>{tallies}</tr>")
    speeds = "".join(f"<td>{escape_html(_speed_cell(row))}</td>" for row in speed_rows(diffs, labels))
    rows.append(f"<tr><td><em>texts/s (× baseline)</em></td>{speeds}</tr>")
    return rows


def _html_cell(t: TaskComparison | None) -> str:
    if t is None:
        return "<td>—</td>"
    css = "up" if t.significant and t.delta > 0 else "down" if t.significant and t.delta < 0 else ""
    if t.test is not None:
        detail = (
            f"CI [{100 * t.test.ci_low:+.2f}, {100 * t.test.ci_high:+.2f}], p (Holm) {t.p_adjusted:.4f}, "
            f"W/T/L {t.test.wins}/{t.test.ties}/{t.test.losses}"
        )
    else:
        detail = f"untested: {t.note}"
    return (
        f'<td class="{css}" title="{escape_html(detail)}">{100 * t.candidate:.2f} '
        f"({100 * t.delta:+.2f}) {_marker(t)}</td>"
    )


def _html_charts(diffs: Sequence[RunDiff], labels: list[str]) -> list[str]:
    charts = []
    for diff, label in zip(diffs, labels, strict=True):
        intervals = [
            Interval(
                label=t.task,
                value=100 * t.delta,
                low=100 * t.test.ci_low if t.test else None,
                high=100 * t.test.ci_high if t.test else None,
                significant=t.significant,
            )
            for t in diff.tasks
        ]
        charts.append(f"<figure>{interval_chart(f'{label} vs baseline: per-task delta', intervals)}</figure>")
    charts.append(f"<figure>{_type_chart(diffs, labels)}</figure>")
    speeds = speed_rows(diffs, labels)
    points = [
        Point(row.label, row.throughput.texts_per_s, 100 * row.mean_score, baseline=row.score_delta is None)
        for row in speeds
        if row.throughput is not None and row.throughput.texts_per_s is not None
    ]
    missing = [row.label for row in speeds if row.throughput is None or row.throughput.texts_per_s is None]
    caption = f"not plotted, speed n/a: {', '.join(missing)}" if missing else ""
    if points:
        chart = scatter(
            "Speed and score", points, x_label="texts per second (encoding)", y_label="mean main score (×100)"
        )
        charts.append(f"<figure>{chart}<figcaption>{escape_html(caption)}</figcaption></figure>")
    else:
        charts.append(
            f'<p class="meta">Speed and score: no run encoded a text in its records ({escape_html(caption)}).</p>'
        )
    return charts


def _type_chart(diffs: Sequence[RunDiff], labels: list[str]) -> str:
    """Per type and run: the mean of its tasks' deltas with its joint-resampling interval (filled: excludes 0)."""
    intervals = []
    for diff, label in zip(diffs, labels, strict=True):
        for found in type_deltas(diff):
            intervals.append(_type_interval(found, label if len(diffs) > 1 else ""))
    footer = "mean delta of the type's tasks, points (filled: interval excludes 0)"
    return interval_chart("Per-type delta vs baseline", intervals, footer=footer)


def _type_interval(found: TypeDelta, label: str) -> Interval:
    return Interval(
        label=f"{label}: {found.task_type}" if label else found.task_type,
        value=100 * found.delta,
        low=100 * found.low if found.low is not None else None,
        high=100 * found.high if found.high is not None else None,
        significant=found.excludes_zero,
    )


def _html_speed_table(speeds: list[SpeedRow]) -> str:
    columns = list(speed_cells(speeds[0]))
    header = "".join(f"<th>{escape_html(c)}</th>" for c in columns)
    rows = "".join(
        "<tr>" + "".join(f"<td>{escape_html(v)}</td>" for v in speed_cells(row).values()) + "</tr>" for row in speeds
    )
    return f'<table id="speed"><thead><tr>{header}</tr></thead><tbody>{rows}</tbody></table>'


def format_compare_html(diffs: Sequence[RunDiff], *, title: str = "evalkit ablation comparison") -> str:
    baseline = diffs[0].baseline
    tasks = _all_tasks(diffs)
    labels = [_run_label(d.candidate, baseline) for d in diffs]
    header = "".join(f"<th>{escape_html(label)}</th>" for label in labels)
    rows = _html_rows(diffs, tasks, labels)
    charts = _html_charts(diffs, labels)
    generated = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    method = escape_html(describe_settings(diffs[0].settings, len(tasks)))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape_html(title)}</title>
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<style>{_CSS}</style></head>
<body>
<h1>{escape_html(title)}</h1>
<p class="meta">Baseline: <code>{escape_html(baseline.label)}</code>. {method};
each run is one family. ▲/▼ significant after Holm, · not significant, ? untested (no per-item scores).
Cells: score (delta); hover for the interval, adjusted p-value and per-item wins/ties/losses. Generated {generated}.</p>
<table id="comparison"><thead><tr><th>task</th><th>baseline</th>{header}</tr></thead>
<tbody>{"".join(rows)}</tbody></table>
<h2>Speed and score</h2>
<p class="meta">{escape_html(SPEED_NOTE)}</p>
{_html_speed_table(speed_rows(diffs, labels))}
<h2>Charts</h2>
<p class="meta">Per-type deltas: {escape_html(TYPE_NOTE)}.</p>
{"".join(charts)}
</body></html>
"""
