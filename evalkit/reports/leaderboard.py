"""Models × tasks, scored as the MTEB leaderboard scores them: the table's data (rendering: ``leaderboard_render``).

Reads any MTEB results folder (the embeddings-benchmark/results repository, its ``results/`` folder, one model's
folder, one revision folder; every past file format, through mteb's own loader) and evalkit's output.

The rules are mteb's (``mteb/benchmarks/_create_table.py``): a task's score comes from
``evalkit.results.benchmark_scores`` (the benchmark's own splits and subsets); ``Mean (Task)`` and each type's mean
are plain means that are empty, never partial, when a task is missing; ``Mean (TaskType)`` is the mean of the type
means; the rank is the Borda rank: per task, each model earns ``n_models - rank`` points (ties share the average
rank; a task a model did not run earns nothing) and models are ranked by their points, ties taking the best rank.

On request a board also carries each row's 95% rank interval by two resampling units (within tasks, across tasks:
``evalkit.reports.leaderboard_stats``) and its encode speed from the run records. ``Leaderboard.to_dataframe`` is
the table the CLI prints, as numbers.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalkit.errors import EvalkitError
from evalkit.registry.benchmarks import Benchmark, get_benchmark
from evalkit.reports.leaderboard_stats import (
    BoardIntervals,
    IntervalSettings,
    RowInterval,
    Speed,
    board_intervals,
    speed_of,
)
from evalkit.results.benchmark_scores import benchmark_scores
from evalkit.results.folders import model_folders, read_model_folder, revision_folders
from evalkit.results.record import UNKNOWN_TYPE, TaskRecord, default_task_registry
from evalkit.results.task_score import mean_or_none

if TYPE_CHECKING:
    import pandas as pd

FORMATS = ("md", "csv", "html", "latex")
COLUMN_SETS = ("means", "types", "tasks")  # means; + per-type means; + every task
UNITS = (("within", "within tasks"), ("across", "across tasks"))  # (row attribute, the unit's name)


@dataclass(frozen=True)
class LeaderboardRow:
    model: str
    revision: str | None
    per_task: dict[str, float | None]
    per_type: dict[str, float | None]
    mean: float | None
    mean_task_type: float | None
    rank: int = 0
    within: RowInterval | None = None  # rank interval resampling each task's items (evalkit runs only)
    across: RowInterval | None = None  # rank interval resampling the tasks
    published: bool = False  # no per-item scores at all (a published result file): across tasks only
    speed: Speed | None = None  # from the run records; None: none (a published result file)

    @property
    def name(self) -> str:
        """The model with its short revision, as every format names a row."""
        if not self.revision:
            return self.model
        commit, tag = self.revision[:40], self.revision[40:]  # a pinned commit, then evalkit's tags
        is_commit = len(commit) == 40 and all(c in "0123456789abcdef" for c in commit)
        return f"{self.model} ({commit[:12] + tag if is_commit else self.revision})"


@dataclass(frozen=True)
class Column:
    """One value column: its header, what it holds (``score`` 0-1, ``rank``, ``flag``, ``rate``, ``mib``,
    ``text``) and how a row's value is read."""

    header: str
    kind: str
    value: Callable[[LeaderboardRow], Any]


@dataclass(frozen=True)
class Leaderboard:
    benchmark: str | None
    tasks: list[str]
    task_types: dict[str, str]  # task → type
    types: list[str]
    rows: list[LeaderboardRow]  # best rank first
    intervals: BoardIntervals | None = None  # both units' results (settings, notes), when asked for
    speed: bool = False  # the rows carry speed

    def score_columns(self, columns: str = "tasks") -> list[Column]:
        """The score columns of a column set: ``means``; ``types`` adds the per-type means; ``tasks`` every task."""
        if columns not in COLUMN_SETS:
            raise EvalkitError(f"unknown column set '{columns}' (known: {', '.join(COLUMN_SETS)})", field="columns")
        found = [Column("Mean (Task)", "score", _get("mean")), Column("Mean (TaskType)", "score", _get("mtt"))]
        if columns != "means":
            found += [Column(f"{t} (mean)", "score", _get("type", t)) for t in self.types]
        if columns == "tasks":
            found += [Column(name, "score", _get("task", name)) for name in self.tasks]
        return found

    def interval_columns(self) -> list[Column]:
        """Per unit: the observed rank by the benchmark mean, the interval's ends, separable from the next."""
        if self.intervals is None:
            return []
        found = []
        for attribute, unit in UNITS:
            found += [
                Column(f"Rank {unit}", "rank", _interval(attribute, "rank")),
                Column(f"Rank {unit} (low)", "rank", _interval(attribute, "low")),
                Column(f"Rank {unit} (high)", "rank", _interval(attribute, "high")),
                Column(f"Separable {unit}", "flag", _interval(attribute, "separable_below")),
            ]
        return found

    def speed_columns(self) -> list[Column]:
        if not self.speed:
            return []
        return [
            Column("Texts/s", "rate", _speed("texts_per_s")),
            Column("Tokens/s", "rate", _speed("tokens_per_s")),
            Column("Peak RSS (MiB)", "mib", _speed("peak_rss_mib")),
            Column("Device", "text", _speed("device")),
            Column("Precision", "text", _speed("precision")),
        ]

    def columns(self, columns: str = "tasks") -> list[Column]:
        """Every value column after rank, model and revision, in the order every format shows them."""
        return [*self.interval_columns(), *self.score_columns(columns), *self.speed_columns()]

    def to_dataframe(self, columns: str = "tasks") -> pd.DataFrame:
        """One row per leaderboard row, the CLI's CSV columns (rank, model, revision, then :meth:`columns`);
        scores on the 0-1 scale, a missing score NaN; ranks as nullable integers, flags as nullable booleans."""
        import pandas as pd

        chosen = self.columns(columns)
        frame = pd.DataFrame(
            [[row.rank, row.model, row.revision, *(c.value(row) for c in chosen)] for row in self.rows],
            columns=["Rank (Borda)", "Model", "Revision", *(c.header for c in chosen)],
        )
        for column in chosen:
            dtype = {"rank": "Int64", "flag": "boolean", "text": "object"}.get(column.kind, "float64")
            frame[column.header] = frame[column.header].astype(dtype)
        return frame


def _get(kind: str, name: str = "") -> Callable[[LeaderboardRow], float | None]:
    if kind == "mean":
        return lambda row: row.mean
    if kind == "mtt":
        return lambda row: row.mean_task_type
    return lambda row: (row.per_type if kind == "type" else row.per_task).get(name)


def _interval(attribute: str, field: str) -> Callable[[LeaderboardRow], Any]:
    def value(row: LeaderboardRow) -> Any:
        interval = getattr(row, attribute)
        return None if interval is None else getattr(interval, field)

    return value


def _speed(field: str) -> Callable[[LeaderboardRow], Any]:
    return lambda row: None if row.speed is None else getattr(row.speed, field)


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


def _unique_keys(rows: Sequence[LeaderboardRow]) -> list[str]:
    """A distinct key per row (its name; a repeated name gets ``#2``, ``#3``): the rank intervals' model names."""
    keys: list[str] = []
    for row in rows:
        key, count = row.name, 1
        while key in keys:
            count += 1
            key = f"{row.name} #{count}"
        keys.append(key)
    return keys


def _with_extras(
    rows: list[LeaderboardRow],
    loaded: Loaded,
    context: tuple[list[str], Benchmark | None],
    intervals: IntervalSettings | None,
    speed: bool,
) -> tuple[list[LeaderboardRow], BoardIntervals | None]:
    """The rows with their speed and rank intervals attached (rows and ``loaded`` in the same order)."""
    records = [list(group) for _, group in loaded]
    if speed:
        rows = [dataclasses.replace(row, speed=speed_of(group)) for row, group in zip(rows, records, strict=True)]
    if intervals is None:
        return rows, None
    keys = _unique_keys(rows)
    inputs = {key: (group, row.per_task) for key, group, row in zip(keys, records, rows, strict=True)}
    found = board_intervals(inputs, context[0], context[1], intervals)
    attached = [
        dataclasses.replace(
            row,
            within=found.row(found.within, key),
            across=found.row(found.across, key),
            published=key in found.published,
        )
        for key, row in zip(keys, rows, strict=True)
    ]
    return attached, found


def leaderboard_of(
    loaded: Loaded,
    benchmark: str | Benchmark | None = None,
    *,
    intervals: IntervalSettings | None = None,
    speed: bool = False,
) -> Leaderboard:
    """The leaderboard over already-read records: a row per (label, records), scored by the one rule;
    ``intervals``: each row's rank intervals by both units; ``speed``: each row's encode speed."""
    bench = get_benchmark(benchmark) if isinstance(benchmark, str) else benchmark
    if bench is not None:
        tasks = list(bench.task_names)
        task_types = {name: bench.task_type(name) for name in tasks}
        rows = _benchmark_rows(loaded, bench)
    else:
        task_types = _task_types(loaded)
        tasks = list(task_types)
        rows = _plain_rows(loaded, tasks, task_types)
    rows, found = _with_extras(rows, loaded, (tasks, bench), intervals, speed)
    types = list(dict.fromkeys(task_types[name] for name in tasks))
    ranks = borda_ranks([row.per_task for row in rows])
    ranked = sorted(
        (dataclasses.replace(row, rank=rank) for row, rank in zip(rows, ranks, strict=True)),
        key=lambda r: (r.rank, -(r.mean if r.mean is not None else -math.inf), r.model),
    )
    return Leaderboard(
        benchmark=bench.name if bench else None,
        tasks=tasks,
        task_types=task_types,
        types=types,
        rows=ranked,
        intervals=found,
        speed=speed,
    )


def build_leaderboard(
    paths: Sequence[Path],
    benchmark: str | Benchmark | None = None,
    *,
    each_revision: bool = False,
    intervals: IntervalSettings | None = None,
    speed: bool = False,
) -> Leaderboard:
    """A row per model folder, its revisions joined as mteb joins them; ``each_revision``: a row per revision
    folder instead, so a model's ablations and hybrids (``+retrieval-hybrid...``) rank beside it."""
    logging.getLogger("mteb").setLevel(logging.ERROR)  # mteb logs every conversion; a missing cell shows as empty
    folders = model_folders(paths)
    if each_revision:
        folders = revision_folders(folders)
    registry = default_task_registry()
    loaded = [(f.name.replace("__", "/"), read_model_folder(f, registry)) for f in folders]
    return leaderboard_of(loaded, benchmark, intervals=intervals, speed=speed)


def render(board: Leaderboard, fmt: str, *, decimals: int = 2, **options: Any) -> str:
    """The board as Markdown, CSV, HTML or LaTeX (``evalkit.reports.leaderboard_render.render_board``)."""
    from evalkit.reports.leaderboard_render import render_board

    return render_board(board, fmt, decimals=decimals, **options)
