"""A leaderboard-style table of main scores, read from MTEB-format result files."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import fmean

from evalkit.errors import DataError
from evalkit.registry.tasks import TaskRegistry
from evalkit.reports.escape import escape_markdown
from evalkit.results.task_result import read_task_result


@dataclass(frozen=True)
class ScoreRow:
    task: str
    task_type: str
    splits: tuple[str, ...]
    metric: str
    score: float  # mean main score over splits and subsets, as mteb's TaskResult.get_score


def score_row(result_file: Path, registry: TaskRegistry) -> ScoreRow:
    result = read_task_result(result_file)
    try:
        task = result["task_name"]
        entries = [(split, entry) for split, subsets in result["scores"].items() for entry in subsets]
        main_scores = [float(entry["main_score"]) for _, entry in entries]
    except (KeyError, TypeError, ValueError) as err:
        raise DataError(f"not an MTEB task result ({err!r})", file=result_file, field="scores") from None
    spec = registry.get(task)
    return ScoreRow(
        task=task,
        task_type=spec.type,
        splits=tuple(dict.fromkeys(split for split, _ in entries)),
        metric=spec.main_score,
        score=fmean(main_scores),
    )


def format_table(rows: Sequence[ScoreRow], *, model: str) -> str:
    """Scores ×100 with two decimals, grouped by type, with per-type and overall means over tasks.

    The table is Markdown (pasted into PRs and READMEs) printed to a terminal: every name from a result file or the
    command line goes through ``escape_markdown``, so ``|`` cannot shift columns and ESC cannot reach the terminal.
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
                f"| {100 * row.score:.2f} |"
            )
        lines.append(f"| {md(task_type)} | *average of {len(typed)}* | | | {100 * fmean(r.score for r in typed):.2f} |")
    if len(by_type) > 1:
        lines.append(f"| all | *average of {len(rows)}* | | | {100 * fmean(r.score for r in rows):.2f} |")
    return "\n".join(lines)
