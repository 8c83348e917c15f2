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
from pathlib import Path

from evalkit.errors import DataError
from evalkit.registry.benchmarks import Benchmark, get_benchmark
from evalkit.reports.escape import escape_csv_cell, escape_html, escape_latex, escape_markdown
from evalkit.results.benchmark_scores import TaskResultFile, benchmark_scores, load_model_results, task_score
from evalkit.safe_paths import ensure_within

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


def _has_task_files(folder: Path) -> bool:
    return any(p.suffix == ".json" and p.name != "model_meta.json" for p in folder.iterdir() if p.is_file())


def _is_model_folder(folder: Path) -> bool:
    return any(child.is_dir() and _has_task_files(child) for child in folder.iterdir())


def model_folders(paths: Sequence[Path]) -> list[Path]:
    """Each path is a revision folder, a model folder, or a root holding model folders (up to two levels down)."""
    found: list[Path] = []
    for path in paths:
        path = Path(path)
        if not path.is_dir():
            raise DataError("not a results folder", file=path)
        if _has_task_files(path) or _is_model_folder(path):
            found.append(path)
            continue
        level = [path]
        for _ in range(2):
            level = sorted(
                ensure_within(path, child, what="results folder")  # a link out of the folder given is refused
                for folder in level
                for child in folder.iterdir()
                if child.is_dir()
            )
            models = [folder for folder in level if _is_model_folder(folder) or _has_task_files(folder)]
            if models:
                found.extend(models)
                break
        else:
            raise DataError("no MTEB results found here (no <Task>.json within two levels)", file=path)
    return found


def _mean(values: Sequence[float | None]) -> float | None:
    if not values or any(v is None for v in values):
        return None
    return sum(values) / len(values)  # type: ignore[arg-type]


def _unbenchmarked_scores(files: list[TaskResultFile], tasks: list[str]) -> dict[str, float | None]:
    """Without a benchmark: each task scored on its mteb task's default splits and subsets."""
    import mteb

    by_name = {f.task_name: f for f in files}
    scores: dict[str, float | None] = {}
    for name in tasks:
        if name not in by_name:
            scores[name] = None
            continue
        try:
            task = mteb.get_task(name)
        except Exception:  # not an mteb task: the mean main score the file holds
            scores[name] = by_name[name].result.get_score()
            continue
        scores[name], _ = task_score(by_name[name].result, task)
    return scores


def _task_type(name: str) -> str:
    import mteb

    try:
        return str(mteb.get_task(name).metadata.type)
    except Exception:
        return "Unknown"


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


def revision_folders(folders: Sequence[Path]) -> list[Path]:
    """Each model folder as its revision folders (a revision folder stays as it is)."""
    expanded: list[Path] = []
    for folder in folders:
        if _has_task_files(folder):
            expanded.append(folder)
        else:
            expanded += sorted(
                ensure_within(folder, child, what="revision folder")
                for child in folder.iterdir()
                if child.is_dir() and _has_task_files(child)
            )
    return expanded


def build_leaderboard(
    paths: Sequence[Path], benchmark: str | Benchmark | None = None, *, each_revision: bool = False
) -> Leaderboard:
    """A row per model folder, its revisions joined as mteb joins them; ``each_revision``: a row per revision
    folder instead, so a model's ablations and hybrids (``+retrieval-hybrid...``) rank beside it."""
    logging.getLogger("mteb").setLevel(logging.ERROR)  # mteb logs every conversion; a missing cell shows as empty
    folders = model_folders(paths)
    if each_revision:
        folders = revision_folders(folders)
    loaded = [(folder, load_model_results(folder)) for folder in folders]
    bench = get_benchmark(benchmark) if isinstance(benchmark, str) else benchmark
    rows: list[LeaderboardRow] = []
    if bench is not None:
        tasks = list(bench.task_names)
        task_types = {name: bench.task_type(name) for name in tasks}
        for folder, files in loaded:
            scores = benchmark_scores(files, bench)
            rows.append(
                LeaderboardRow(
                    model=scores.model or folder.name.replace("__", "/"),
                    revision=scores.revision,
                    per_task=scores.per_task,
                    per_type=scores.per_type,
                    mean=scores.mean,
                    mean_task_type=scores.mean_task_type,
                )
            )
    else:
        tasks = sorted({f.task_name for _, files in loaded for f in files})
        task_types = {name: _task_type(name) for name in tasks}
        for folder, files in loaded:
            per_task = _unbenchmarked_scores(files, tasks)
            by_type: dict[str, list[float | None]] = {}
            for name in tasks:
                by_type.setdefault(task_types[name], []).append(per_task[name])
            per_type = {name: _mean(values) for name, values in sorted(by_type.items())}
            models = {f.model for f in files if f.model}
            revisions = {f.revision for f in files}
            rows.append(
                LeaderboardRow(
                    model=models.pop() if len(models) == 1 else folder.name.replace("__", "/"),
                    revision=revisions.pop() if len(revisions) == 1 else None,
                    per_task=per_task,
                    per_type=per_type,
                    mean=_mean(list(per_task.values())),
                    mean_task_type=_mean(list(per_type.values())),
                )
            )
    types = list(dict.fromkeys(task_types[name] for name in tasks))
    ranks = borda_ranks([row.per_task for row in rows])
    ranked = sorted(
        (LeaderboardRow(**{**row.__dict__, "rank": rank}) for row, rank in zip(rows, ranks, strict=True)),
        key=lambda r: (r.rank, -(r.mean if r.mean is not None else -math.inf), r.model),
    )
    return Leaderboard(
        benchmark=bench.name if bench else None, tasks=tasks, task_types=task_types, types=types, rows=ranked
    )


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


def render(board: Leaderboard, fmt: str, *, decimals: int = 2) -> str:
    """Scores ×100 with fixed decimals; the best value of each column marked; missing cells empty."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format '{fmt}' (known: {', '.join(FORMATS)})")
    columns = _columns(board)
    best = {key: _best(board, key) for _, key in columns}

    def cell(row: LeaderboardRow, key: str, mark: tuple[str, str]) -> str:
        value = _value(row, key)
        if value is None:
            return ""
        text = f"{100 * value:.{decimals}f}"
        return f"{mark[0]}{text}{mark[1]}" if best[key] is not None and value == best[key] else text

    def model_name(row: LeaderboardRow) -> str:
        if not row.revision:
            return row.model
        commit, tag = row.revision[:40], row.revision[40:]  # a pinned commit, then evalkit's tags (+retrieval-...)
        is_commit = len(commit) == 40 and all(c in "0123456789abcdef" for c in commit)
        return f"{row.model} ({commit[:12] + tag if is_commit else row.revision})"

    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        names = ["Rank (Borda)", "Model", "Revision", *(name for name, _ in columns)]
        writer.writerow([escape_csv_cell(text) for text in names])  # task names are headers: "=cmd|..." too
        for row in board.rows:
            cells = [row.rank, row.model, row.revision or "", *(cell(row, key, ("", "")) for _, key in columns)]
            writer.writerow([escape_csv_cell(text) for text in cells])
        return buffer.getvalue()
    if fmt == "md":
        title = f"Leaderboard: {escape_markdown(board.benchmark)}" if board.benchmark else "Leaderboard"
        lines = [
            f"### {title}",
            "",
            "| Rank (Borda) | Model | " + " | ".join(escape_markdown(h) for h, _ in columns) + " |",
            "| ---: | --- | " + " | ".join("---:" for _ in columns) + " |",
        ]
        for row in board.rows:
            cells = [cell(row, key, ("**", "**")) for _, key in columns]
            lines.append(f"| {row.rank} | {escape_markdown(model_name(row))} | " + " | ".join(cells) + " |")
        lines += ["", "Scores ×100; bold: best in the column; empty: missing (a mean with a missing task is empty)."]
        return "\n".join(lines) + "\n"
    if fmt == "latex":
        spec = "r l " + " ".join("r" for _ in columns)
        lines = [
            f"\\begin{{tabular}}{{{spec}}}",
            "\\hline",
            "Rank & Model & " + " & ".join(escape_latex(h) for h, _ in columns) + " \\\\",
            "\\hline",
        ]
        for row in board.rows:
            cells = [cell(row, key, ("\\textbf{", "}")) for _, key in columns]
            lines.append(f"{row.rank} & {escape_latex(model_name(row))} & " + " & ".join(cells) + " \\\\")
        lines += ["\\hline", "\\end{tabular}"]
        return "\n".join(lines) + "\n"
    header = "".join(f"<th>{escape_html(h)}</th>" for h, _ in columns)
    body = []
    for row in board.rows:
        cells = "".join(f"<td>{cell(row, key, ('<strong>', '</strong>'))}</td>" for _, key in columns)
        body.append(f"<tr><td>{row.rank}</td><td>{escape_html(model_name(row))}</td>{cells}</tr>")
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
