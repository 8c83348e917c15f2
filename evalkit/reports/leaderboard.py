"""Models × tasks, scored as the MTEB leaderboard scores them, rendered as Markdown, CSV, HTML or LaTeX.

Reads any MTEB results folder (the embeddings-benchmark/results repository, its ``results/`` folder, one model's
folder, one revision folder; every past file format, through mteb's own loader) and evalkit's output.

The rules are mteb's (``mteb/benchmarks/_create_table.py``): a task's score comes from
``evalkit.results.benchmark_scores`` (the benchmark's own splits and subsets); ``Mean (Task)`` and each type's mean
are plain means that are empty, never partial, when a task is missing; ``Mean (TaskType)`` is the mean of the type
means; the rank is the Borda rank: per task, each model earns ``n_models - rank`` points (ties share the average
rank; a task a model did not run earns nothing) and models are ranked by their points, ties taking the best rank.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from evalkit.registry.benchmarks import Benchmark, get_benchmark
from evalkit.reports.escape import escape_csv_cell, escape_html, escape_latex, escape_markdown
from evalkit.results.benchmark_scores import benchmark_scores
from evalkit.results.folders import model_folders, read_model_folder, revision_folders
from evalkit.results.record import UNKNOWN_TYPE, TaskRecord, default_task_registry
from evalkit.results.task_score import mean_or_none

if TYPE_CHECKING:
    import pandas as pd

FORMATS = ("md", "csv", "html", "latex")


@dataclass(frozen=True)
class LeaderboardRow:
    model: str
    revision: str | None
    per_task: dict[str, float | None]
    per_type: dict[str, float | None]
    mean: float | None
    mean_task_type: float | None
    rank: int = 0


@dataclass(frozen=True)
class Leaderboard:
    benchmark: str | None
    tasks: list[str]
    task_types: dict[str, str]  # task → type
    types: list[str]
    rows: list[LeaderboardRow]  # best rank first

    def to_dataframe(self) -> pd.DataFrame:
        """One row per leaderboard row, the CLI's columns (rank, model, revision, means, type means, tasks), 0-1
        scale; a missing score is NaN."""
        import pandas as pd

        columns = _columns(self)
        records = [
            [row.rank, row.model, row.revision, *(_or_nan(_value(row, key)) for _, key in columns)] for row in self.rows
        ]
        return pd.DataFrame(records, columns=["Rank (Borda)", "Model", "Revision", *(name for name, _ in columns)])


def _unbenchmarked_scores(records: list[TaskRecord], tasks: list[str]) -> dict[str, float | None]:
    """Without a benchmark: each task by the one rule over the cells it expects (its run's, else its spec's)."""
    by_name = {record.name: record for record in records}
    return {name: by_name[name].main_score if name in by_name else None for name in tasks}


def _task_types(loaded: Sequence[tuple[str, list[TaskRecord]]]) -> dict[str, str]:
    types = {record.name: record.task_type for _, records in loaded for record in records}
    return {name: "Unknown" if kind == UNKNOWN_TYPE else kind for name, kind in sorted(types.items())}


def borda_ranks(rows: Sequence[dict[str, float | None]]) -> list[int]:
    """mteb's Borda rank over per-task scores (``_borda_rank_from_long``): 1 is best."""
    count = len(rows)
    points = [0.0] * count
    tasks = {task for row in rows for task in row}
    for task in tasks:
        scored = [(i, row[task]) for i, row in enumerate(rows) if row.get(task) is not None]
        for i, value in scored:
            higher = sum(1 for _, other in scored if other > value)  # type: ignore[operator]
            equal = sum(1 for _, other in scored if other == value)
            points[i] += count - (higher + (equal + 1) / 2)  # n - average rank
    return [1 + sum(1 for other in points if other > mine + 1e-12) for mine in points]


Loaded = Sequence[tuple[str, list[TaskRecord]]]  # (fallback row label, a model's records), one per row


def _benchmark_rows(loaded: Loaded, bench: Benchmark) -> list[LeaderboardRow]:
    rows = []
    for label, records in loaded:
        scores = benchmark_scores(records, bench)
        rows.append(
            LeaderboardRow(
                model=scores.model or label,
                revision=scores.revision,
                per_task=scores.per_task,
                per_type=scores.per_type,
                mean=scores.mean,
                mean_task_type=scores.mean_task_type,
            )
        )
    return rows


def _plain_rows(loaded: Loaded, tasks: list[str], task_types: dict[str, str]) -> list[LeaderboardRow]:
    rows = []
    for label, records in loaded:
        per_task = _unbenchmarked_scores(records, tasks)
        by_type: dict[str, list[float | None]] = {}
        for name in tasks:
            by_type.setdefault(task_types[name], []).append(per_task[name])
        per_type = {name: mean_or_none(values) for name, values in sorted(by_type.items())}
        models = {r.model for r in records if r.model}
        revisions = {r.revision for r in records}
        rows.append(
            LeaderboardRow(
                model=models.pop() if len(models) == 1 else label,
                revision=revisions.pop() if len(revisions) == 1 else None,
                per_task=per_task,
                per_type=per_type,
                mean=mean_or_none(list(per_task.values())),
                mean_task_type=mean_or_none(list(per_type.values())),
            )
        )
    return rows


def leaderboard_of(loaded: Loaded, benchmark: str | Benchmark | None = None) -> Leaderboard:
    """The leaderboard over already-read records: a row per (label, records), scored by the one rule."""
    bench = get_benchmark(benchmark) if isinstance(benchmark, str) else benchmark
    if bench is not None:
        tasks = list(bench.task_names)
        task_types = {name: bench.task_type(name) for name in tasks}
        rows = _benchmark_rows(loaded, bench)
    else:
        task_types = _task_types(loaded)
        tasks = list(task_types)
        rows = _plain_rows(loaded, tasks, task_types)
    types = list(dict.fromkeys(task_types[name] for name in tasks))
    ranks = borda_ranks([row.per_task for row in rows])
    ranked = sorted(
        (LeaderboardRow(**{**row.__dict__, "rank": rank}) for row, rank in zip(rows, ranks, strict=True)),
        key=lambda r: (r.rank, -(r.mean if r.mean is not None else -math.inf), r.model),
    )
    return Leaderboard(
        benchmark=bench.name if bench else None, tasks=tasks, task_types=task_types, types=types, rows=ranked
    )


def build_leaderboard(
    paths: Sequence[Path], benchmark: str | Benchmark | None = None, *, each_revision: bool = False
) -> Leaderboard:
    """A row per model folder, its revisions joined as mteb joins them; ``each_revision``: a row per revision
    folder instead, so a model's ablations and hybrids (``+retrieval-hybrid...``) rank beside it."""
    logging.getLogger("mteb").setLevel(logging.ERROR)  # mteb logs every conversion; a missing cell shows as empty
    folders = model_folders(paths)
    if each_revision:
        folders = revision_folders(folders)
    registry = default_task_registry()
    return leaderboard_of([(f.name.replace("__", "/"), read_model_folder(f, registry)) for f in folders], benchmark)


def _or_nan(value: float | None) -> float:
    return math.nan if value is None else value


def _columns(board: Leaderboard) -> list[tuple[str, str]]:
    """(header, key) for every score column: means, type means, then tasks."""
    columns = [("Mean (Task)", "mean"), ("Mean (TaskType)", "mean_task_type")]
    columns += [(f"{t} (mean)", f"type:{t}") for t in board.types]
    columns += [(name, f"task:{name}") for name in board.tasks]
    return columns


def _value(row: LeaderboardRow, key: str) -> float | None:
    if key == "mean":
        return row.mean
    if key == "mean_task_type":
        return row.mean_task_type
    kind, name = key.split(":", 1)
    return (row.per_type if kind == "type" else row.per_task).get(name)


def _best(board: Leaderboard, key: str) -> float | None:
    values = [v for row in board.rows if (v := _value(row, key)) is not None]
    return max(values) if values else None


@dataclass(frozen=True)
class _Cells:
    """How one board's cells print: ×100 with fixed decimals, the best of each column marked, missing empty."""

    board: Leaderboard
    decimals: int

    @cached_property
    def columns(self) -> list[tuple[str, str]]:
        return _columns(self.board)

    @cached_property
    def best(self) -> dict[str, float | None]:
        return {key: _best(self.board, key) for _, key in self.columns}

    def cell(self, row: LeaderboardRow, key: str, mark: tuple[str, str]) -> str:
        value = _value(row, key)
        if value is None:
            return ""
        text = f"{100 * value:.{self.decimals}f}"
        best = self.best[key]
        return f"{mark[0]}{text}{mark[1]}" if best is not None and value == best else text

    def row(self, row: LeaderboardRow, mark: tuple[str, str]) -> list[str]:
        return [self.cell(row, key, mark) for _, key in self.columns]


def _model_name(row: LeaderboardRow) -> str:
    if not row.revision:
        return row.model
    commit, tag = row.revision[:40], row.revision[40:]  # a pinned commit, then evalkit's tags (+retrieval-...)
    is_commit = len(commit) == 40 and all(c in "0123456789abcdef" for c in commit)
    return f"{row.model} ({commit[:12] + tag if is_commit else row.revision})"


def _csv(cells: _Cells) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    names = ["Rank (Borda)", "Model", "Revision", *(name for name, _ in cells.columns)]
    writer.writerow([escape_csv_cell(text) for text in names])  # task names are headers: "=cmd|..." too
    for row in cells.board.rows:
        values = [row.rank, row.model, row.revision or "", *cells.row(row, ("", ""))]
        writer.writerow([escape_csv_cell(text) for text in values])
    return buffer.getvalue()


def _markdown(cells: _Cells) -> str:
    board = cells.board
    title = f"Leaderboard: {escape_markdown(board.benchmark)}" if board.benchmark else "Leaderboard"
    lines = [
        f"### {title}",
        "",
        "| Rank (Borda) | Model | " + " | ".join(escape_markdown(h) for h, _ in cells.columns) + " |",
        "| ---: | --- | " + " | ".join("---:" for _ in cells.columns) + " |",
    ]
    for row in board.rows:
        values = cells.row(row, ("**", "**"))
        lines.append(f"| {row.rank} | {escape_markdown(_model_name(row))} | " + " | ".join(values) + " |")
    lines += ["", "Scores ×100; bold: best in the column; empty: missing (a mean with a missing task is empty)."]
    return "\n".join(lines) + "\n"


def _latex(cells: _Cells) -> str:
    spec = "r l " + " ".join("r" for _ in cells.columns)
    lines = [
        f"\\begin{{tabular}}{{{spec}}}",
        "\\hline",
        "Rank & Model & " + " & ".join(escape_latex(h) for h, _ in cells.columns) + " \\\\",
        "\\hline",
    ]
    for row in cells.board.rows:
        values = cells.row(row, ("\\textbf{", "}"))
        lines.append(f"{row.rank} & {escape_latex(_model_name(row))} & " + " & ".join(values) + " \\\\")
    lines += ["\\hline", "\\end{tabular}"]
    return "\n".join(lines) + "\n"


def _html(cells: _Cells) -> str:
    board = cells.board
    header = "".join(f"<th>{escape_html(h)}</th>" for h, _ in cells.columns)
    body = []
    for row in board.rows:
        values = "".join(f"<td>{value}</td>" for value in cells.row(row, ("<strong>", "</strong>")))
        body.append(f"<tr><td>{row.rank}</td><td>{escape_html(_model_name(row))}</td>{values}</tr>")
    title = f"Leaderboard: {board.benchmark}" if board.benchmark else "Leaderboard"
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape_html(title)}</title>'
        "<style>body{font-family:system-ui,sans-serif;margin:2rem}table{border-collapse:collapse;"
        "font-variant-numeric:tabular-nums}th,td{border:1px solid #ccc;padding:3px 6px;text-align:right}"
        "td:nth-child(2),th:nth-child(2){text-align:left}</style></head><body>"
        f'<h1>{escape_html(title)}</h1><table id="leaderboard"><thead><tr><th>Rank (Borda)</th><th>Model</th>'
        f"{header}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        "<p>Scores ×100; bold: best in the column; empty: missing.</p></body></html>\n"
    )


_RENDERERS = {"md": _markdown, "csv": _csv, "html": _html, "latex": _latex}


def render(board: Leaderboard, fmt: str, *, decimals: int = 2) -> str:
    """Scores ×100 with fixed decimals; the best value of each column marked; missing cells empty."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format '{fmt}' (known: {', '.join(FORMATS)})")
    return _RENDERERS[fmt](_Cells(board, decimals))
