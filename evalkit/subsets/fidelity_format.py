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

SUMMARY_COLUMNS = ("task", "runs", "Spearman", "Kendall τ-b", "mean |shift|", "max |shift|", "verdicts agree")
SCORE_COLUMNS = ("run", "full", "subset", "shift", "verdict (full)", "verdict (subset)", "agree")


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


def summary_cells(row: TaskFidelity) -> list[str]:
    """One summary row: correlations, shifts in points (×100), verdict agreement as agreements / judged."""
    agree = f"{row.agreements}/{row.verdicts}" if row.verdicts else "—"
    return [
        row.task,
        str(row.runs),
        _number(row.spearman),
        _number(row.kendall),
        _points(row.mean_abs_shift),
        _points(row.max_abs_shift),
        agree,
    ]


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
    lines = [
        "### Quick-subset fidelity",
        "",
        f"- baseline: {escape_markdown(report.baseline)}",
        f"- verdicts: `evalkit diff` against the baseline, {escape_markdown(describe(report.settings))}",
        "- shift: subset − full main score, points ×100; the pooled row averages the per-task correlations",
        f"- worst task's Kendall τ-b: {_number(report.min_kendall)}",
        "",
        *_table(SUMMARY_COLUMNS, [summary_cells(t) for t in report.tasks], 5),
        "| " + " | ".join([f"**{pooled[0]}**", *pooled[1:]]) + " |",
    ]
    for row in report.tasks:
        lines += ["", f"#### {escape_markdown(row.task)}", "", *_table(SCORE_COLUMNS, score_cells(row), 3)]
    if report.pooled.disagreements:
        lines += ["", "Verdicts that differ:", "", *(f"- {escape_markdown(d)}" for d in report.pooled.disagreements)]
    if report.not_compared:
        lines += ["", "Not compared: " + escape_markdown(", ".join(report.not_compared))]
    return "\n".join(lines) + "\n"


def format_text(report: FidelityReport) -> str:
    """The summary table for a terminal: one row per task and the pooled row, then verdicts that differ."""
    rows = [list(SUMMARY_COLUMNS)] + [summary_cells(t) for t in (*report.tasks, report.pooled)]
    rows = [[escape_terminal(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(SUMMARY_COLUMNS))]
    lines = [f"baseline: {escape_terminal(report.baseline)}", ""]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines += [f"worst task's Kendall tau-b: {_number(report.min_kendall)}"]
    lines += [f"verdict differs: {escape_terminal(d)}" for d in report.pooled.disagreements]
    if report.not_compared:
        lines.append("not compared: " + escape_terminal(", ".join(report.not_compared)))
    return "\n".join(lines) + "\n"
