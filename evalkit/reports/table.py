"""The run table ``evalkit run`` prints: one row per task, its score by the one task-score rule."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from evalkit.registry.tasks import TaskRegistry
from evalkit.reports.escape import escape_markdown
from evalkit.results.record import TaskRecord, read_task_record
from evalkit.results.task_score import mean_or_none

MISSING = "missing"


@dataclass(frozen=True)
class ScoreRow:
    task: str
    task_type: str
    splits: tuple[str, ...]
    metric: str
    score: float | None  # mean main score over the cells the task expects; None when one is missing or NaN


def row_of(record: TaskRecord) -> ScoreRow:
    """A task's row: the splits it expects and its score by the one rule."""
    return ScoreRow(
        task=record.name,
        task_type=record.task_type,
        splits=tuple(record.expected),
        metric=record.main_score_name,
        score=record.main_score,
    )


def score_row(result_file: Path, registry: TaskRegistry) -> ScoreRow:
    """The row of one ``<Task>.json`` (read with the one reader, its side files included)."""
    return row_of(read_task_record(result_file, registry=registry))


def _points(value: float | None) -> str:
    return MISSING if value is None else f"{100 * value:.2f}"


def format_table(rows: Sequence[ScoreRow], *, model: str) -> str:
    """Scores ×100 with two decimals, grouped by type, with per-type and overall means over tasks.

    A mean over a missing task is missing, never partial. The table is Markdown (pasted into PRs and READMEs)
    printed to a terminal: every name from a result file or the command line goes through ``escape_markdown``, so
    ``|`` cannot shift columns and ESC cannot reach the terminal.
    """
    md = escape_markdown
    lines = [
        f"model: {md(model)}",
        "",
        "| type | task | splits | main score | score |",
        "| --- | --- | --- | --- | ---: |",
    ]
    by_type: dict[str, list[ScoreRow]] = {}
    for row in sorted(rows, key=lambda r: (r.task_type, r.task)):
        by_type.setdefault(row.task_type, []).append(row)
    for task_type, typed in by_type.items():
        for row in typed:
            lines.append(
                f"| {md(task_type)} | {md(row.task)} | {md(', '.join(row.splits))} | {md(row.metric)} "
                f"| {_points(row.score)} |"
            )
        type_mean = mean_or_none([r.score for r in typed])
        lines.append(f"| {md(task_type)} | *average of {len(typed)}* | | | {_points(type_mean)} |")
    if len(by_type) > 1:
        lines.append(f"| all | *average of {len(rows)}* | | | {_points(mean_or_none([r.score for r in rows]))} |")
    return "\n".join(lines)
