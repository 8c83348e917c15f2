"""A fidelity report as Markdown (``evalkit subset report --markdown``) and as plain text for the terminal.

Labels and task names come from the user and from result files: each goes through its format's escape.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from evalkit.reports.diff import TEST_NAMES
from evalkit.reports.escape import escape_markdown, escape_terminal

if TYPE_CHECKING:
    from evalkit.reports.diff import DiffSettings
    from evalkit.subsets.fidelity import FidelityReport, TaskFidelity
    from evalkit.subsets.separable import PairOrder, SeparableSummary

SUMMARY_COLUMNS = ("task", "runs", "Spearman", "Kendall τ-b", "mean |shift|", "max |shift|", "verdicts agree")
PAIR_COLUMNS = ("separable pairs", "kept order", "τ (separable)")
CHANGED_COLUMNS = (
    "higher on the full task",
    "lower on the full task",
    "full Δ",
    "subset Δ",
    "p (adj.)",
    "on the subset",
)
SCORE_COLUMNS = ("run", "full", "subset", "shift", "verdict (full)", "verdict (subset)", "agree")


PAIRS_NOTE = (
    "- separable pairs: pairs of runs (every pair, not only against the baseline) that `evalkit diff`'s test, with "
    "the same settings, separates on the full task, of all pairs holding the task; kept order: of those, the ones "
    "the subset orders alike (scores within 1e-6 count as tied); τ (separable) = (kept − reversed) / separable; "
    "the pooled row sums the pair counts over tasks",
)


def describe(settings: DiffSettings) -> str:
    """The test settings both sides were judged with, in one clause."""
    resampled = f", {settings.resamples:,} resamples, seed {settings.seed}" if settings.test != "ttest" else ""
    return (
        f"{TEST_NAMES[settings.test]}{resampled}, alpha {settings.alpha:g}, max drop {settings.max_drop:.2f} points, "
        "Holm over the tasks a run shares with the baseline (the same family on the full tasks and the subsets)"
    )


def _number(value: float, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if math.isfinite(value) else "—"


def _points(value: float, signed: bool = False) -> str:
    if not math.isfinite(value):
        return "—"
    return f"{100 * value:+.2f}" if signed else f"{100 * value:.2f}"


def summary_columns(report: FidelityReport) -> tuple[str, ...]:
    """The summary table's columns: the pair columns only when the pairs were measured."""
    return SUMMARY_COLUMNS + (PAIR_COLUMNS if report.pooled.separable is not None else ())


def pair_cells(summary: SeparableSummary) -> list[str]:
    """Separable / all pairs, kept / separable (with reversed and tied named when any), τ over separable pairs."""
    kept = f"{summary.kept}/{summary.separable}" if summary.separable else "—"
    kept += "".join(
        f", {count} {word}" for count, word in ((summary.reversed, "reversed"), (summary.tied, "tied")) if count
    )
    return [f"{summary.separable}/{summary.pairs}", kept, _number(summary.tau)]


def summary_cells(row: TaskFidelity) -> list[str]:
    """One summary row: correlations, shifts in points (×100), verdict agreement as agreements / judged, and
    when measured the pairs the full task separates and how many keep their order on the subset."""
    agree = f"{row.agreements}/{row.verdicts}" if row.verdicts else "—"
    cells = [
        row.task,
        str(row.runs),
        _number(row.spearman),
        _number(row.kendall),
        _points(row.mean_abs_shift),
        _points(row.max_abs_shift),
        agree,
    ]
    return cells + (pair_cells(row.separable) if row.separable is not None else [])


def changed_cells(summary: SeparableSummary) -> list[list[str]]:
    """The separable pairs the subset reverses or ties: labels, full and subset Δ in points, diff's p."""
    return [
        [
            o.higher,
            o.lower,
            _points(o.full_delta, signed=True),
            _points(o.subset_delta, signed=True),
            f"{o.p_adjusted:.3g}",
            o.order,
        ]
        for o in summary.changed
    ]


def _changed_lines(summary: SeparableSummary | None) -> list[str]:
    if summary is None or not summary.separable:
        return []
    if not summary.changed:
        return ["", f"All {summary.separable} pairs the full task separates keep their order on the subset."]
    intro = (
        f"Pairs the full task separates that the subset reverses or ties ({len(summary.changed)}/{summary.separable}):"
    )
    return ["", intro, "", *_table(CHANGED_COLUMNS, changed_cells(summary), 0)]


def score_cells(row: TaskFidelity) -> list[list[str]]:
    """The runs of one task, full vs subset, with diff's verdict against the baseline on each side."""
    cells = []
    for s in row.scores:
        agree = "" if s.agrees is None else ("yes" if s.agrees else "NO")
        cells.append(
            [
                s.label,
                _points(s.full),
                _points(s.subset),
                _points(s.shift, signed=True),
                s.full_verdict or "(baseline)",
                s.subset_verdict or "(baseline)",
                agree,
            ]
        )
    return cells


def _table(columns: tuple[str, ...], rows: list[list[str]], numeric: int) -> list[str]:
    """A Markdown table whose first ``numeric`` columns after the first are right-aligned."""
    align = ["---", *(["---:"] * numeric), *(["---"] * (len(columns) - numeric - 1))]
    lines = ["| " + " | ".join(escape_markdown(c) for c in columns) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(escape_markdown(c) for c in row) + " |" for row in rows]
    return lines


def format_markdown(report: FidelityReport) -> str:
    pooled = [escape_markdown(c) for c in summary_cells(report.pooled)]
    pairs = report.pooled.separable is not None
    lines = [
        "### Quick-subset fidelity",
        "",
        f"- baseline: {escape_markdown(report.baseline)}",
        f"- verdicts: `evalkit diff` against the baseline, {escape_markdown(describe(report.settings))}",
        "- shift: subset − full main score, points ×100; the pooled row averages the per-task correlations",
        f"- worst task's Kendall τ-b: {_number(report.min_kendall)}",
        *(PAIRS_NOTE if pairs else []),
        *([f"- worst task's τ (separable): {_number(report.min_separable_tau)}"] if pairs else []),
        "",
        *_table(summary_columns(report), [summary_cells(t) for t in report.tasks], 5),
        "| " + " | ".join([f"**{pooled[0]}**", *pooled[1:]]) + " |",
    ]
    for row in report.tasks:
        lines += ["", f"#### {escape_markdown(row.task)}", "", *_table(SCORE_COLUMNS, score_cells(row), 3)]
        lines += _changed_lines(row.separable)
    if report.pooled.disagreements:
        lines += ["", "Verdicts that differ:", "", *(f"- {escape_markdown(d)}" for d in report.pooled.disagreements)]
    if report.not_compared:
        lines += ["", "Not compared: " + escape_markdown(", ".join(report.not_compared))]
    return "\n".join(lines) + "\n"


def format_text(report: FidelityReport) -> str:
    """The summary table for a terminal: one row per task and the pooled row, then verdicts that differ and the
    separable pairs whose order the subset loses."""
    columns = summary_columns(report)
    rows = [list(columns)] + [summary_cells(t) for t in (*report.tasks, report.pooled)]
    rows = [[escape_terminal(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    lines = [f"baseline: {escape_terminal(report.baseline)}", ""]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines += [f"worst task's Kendall tau-b: {_number(report.min_kendall)}"]
    if report.pooled.separable is not None:
        lines += [f"worst task's tau over separable pairs: {_number(report.min_separable_tau)}"]
        lines += [f"order lost: {escape_terminal(_pair_text(o))}" for o in report.pooled.separable.changed]
    lines += [f"verdict differs: {escape_terminal(d)}" for d in report.pooled.disagreements]
    if report.not_compared:
        lines.append("not compared: " + escape_terminal(", ".join(report.not_compared)))
    return "\n".join(lines) + "\n"


def _pair_text(order: PairOrder) -> str:
    return (
        f"{order.task}: {order.higher} over {order.lower} {order.order} on the subset "
        f"(full {_points(order.full_delta, signed=True)}, subset {_points(order.subset_delta, signed=True)} points)"
    )
