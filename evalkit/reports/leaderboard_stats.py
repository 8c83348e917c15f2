"""What the leaderboard shows beside its scores, from the records it read: rank intervals and encode speed.

Rank intervals are ``evalkit.stats.rank_intervals``' two units, fed from the leaderboard's own inputs so that what
is resampled is what was scored:

- **within tasks**: each model's per-item scores (``evalkit/<Task>.per_item.jsonl.gz``, written by ``evalkit run``)
  over the (split, subset) cells the task is scored on (the benchmark's, else the run's), read and checked with
  ``evalkit.reports.runs``' helpers. Only rows whose every task has such scores are ranked in this unit; a row from
  a published result file (no per-item file at all) is named as such, so the table can say "across tasks only".
- **across tasks**: the leaderboard's per-task scores themselves; a row with a missing task has no benchmark mean
  and no interval, as the rank intervals module states.

Speed is ``evalkit.results.throughput.run_throughput`` over a row's run records (estimated for records older than
the ``throughput`` object, as that module says), plus the largest recorded peak resident memory. Published files
have no run records: their speed cells stay empty, never 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from evalkit.errors import EvalkitError
from evalkit.reports.runs import column_values, main_score_statistic, per_item_cells
from evalkit.results.folders import one_per_task
from evalkit.results.record import TaskRecord
from evalkit.results.task_score import Expected, expected_of_spec, expected_of_task, finite
from evalkit.results.throughput import run_throughput
from evalkit.stats.rank_intervals import RankIntervals, TaskItems, across_task_intervals, within_task_intervals

if TYPE_CHECKING:
    from evalkit.registry.benchmarks import Benchmark

LEVEL = 0.95


@dataclass(frozen=True)
class IntervalSettings:
    """How the rank intervals are drawn: ``resamples`` bootstrap resamples from ``seed`` (same seed, same
    intervals), at the fixed 95% level."""

    resamples: int = 1000
    seed: int = 0
    level: float = LEVEL

    def __post_init__(self) -> None:
        for name, least in (("resamples", 1), ("seed", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise EvalkitError(f"must be a whole number of at least {least}, got {value!r}", field=name)


@dataclass(frozen=True)
class RowInterval:
    """One row's rank interval by one unit: its observed rank by the benchmark mean, the interval, and whether it
    is separable from the row ranked just below it in this unit (None: it is the last one ranked)."""

    rank: int
    low: int
    high: int
    separable_below: bool | None


@dataclass(frozen=True)
class BoardIntervals:
    """Both units' results for a board, keyed by row key, and the rows that have no per-item scores at all."""

    within: RankIntervals
    across: RankIntervals
    published: frozenset[str]

    def row(self, unit: RankIntervals, key: str) -> RowInterval | None:
        entry = unit.by_model().get(key)
        if entry is None:
            return None
        return RowInterval(entry.rank, entry.low, entry.high, unit.separable_below().get(key))


@dataclass(frozen=True)
class Speed:
    """A row's encode speed over the tasks that encoded anything, and where the numbers came from."""

    texts_per_s: float | None
    tokens_per_s: float | None
    peak_rss_mib: float | None
    device: str | None
    precision: str | None
    source: str | None  # evalkit.results.throughput.RECORDED or DERIVED; None: no run record encoded a text


def speed_of(records: Sequence[TaskRecord]) -> Speed | None:
    """A row's speed from its run records; None for a row without any (published result files)."""
    run_records = [record.record for record in records if record.record]
    if not run_records:
        return None
    throughput = run_throughput(run_records)
    peaks = [
        value
        for record in run_records
        if isinstance(record.get("throughput"), Mapping)
        and (value := finite(record["throughput"].get("peak_rss_mib"))) is not None
    ]
    peak = max(peaks) if peaks else None
    if throughput is None:
        return Speed(None, None, peak, None, None, None)
    return Speed(
        throughput.texts_per_s,
        throughput.tokens_per_s,
        peak,
        throughput.device,
        throughput.precision,
        throughput.source,
    )


def _expected_cells(bench: Benchmark | None, record: TaskRecord, mteb_tasks: Mapping[str, object]) -> Expected:
    """The cells the task is scored on: the benchmark's task object (or spec), else the run's own."""
    if bench is not None and record.name in bench.spec_tasks:
        spec = bench.spec_tasks[record.name]
        return expected_of_spec(spec.eval_splits, spec.hf_subsets)
    if bench is not None and record.name in mteb_tasks:
        return expected_of_task(mteb_tasks[record.name])
    return record.expected


def task_items(record: TaskRecord, expected: Expected) -> list[TaskItems] | None:
    """The record's per-item scores for its main score over ``expected``, one ``TaskItems`` per cell in the
    expected order, items by id; None when there are none to resample (no file, a main score that is no mean over
    items or correlation over pairs, a cell missing or of fewer than two items). A malformed row is a DataError."""
    rows = record.numbered_per_item_rows()
    stat = main_score_statistic(record)
    if not rows or stat is None:
        return None
    column, statistic = stat
    first = rows[0][1]
    if column not in first or (statistic != "mean" and "gold" not in first):
        return None
    path = record.per_item_file
    cells = per_item_cells(rows, path)
    wanted = [(split, subset) for split, subsets in expected.items() for subset in subsets]
    if not wanted or any(key not in cells or len(cells[key]) < 2 for key in wanted):
        return None
    found = []
    for key in wanted:
        ids = sorted(cells[key])
        gold = column_values(cells[key], ids, "gold", path) if statistic != "mean" else None
        found.append(TaskItems(statistic, column_values(cells[key], ids, column, path), gold, ids))
    return found


def _mteb_tasks(bench: Benchmark | None) -> dict[str, object]:
    return {task.metadata.name: task for task in bench.mteb_tasks()} if bench is not None else {}


def board_intervals(
    rows: Mapping[str, tuple[Sequence[TaskRecord], Mapping[str, float | None]]],
    tasks: Sequence[str],
    bench: Benchmark | None,
    settings: IntervalSettings,
) -> BoardIntervals:
    """Both units over the board's rows. ``rows``: row key → (its records, its per-task scores). Raises a
    ``DataError`` when models' per-item scores are not on the same items (they did not score the same data), or
    when there are fewer than two tasks to resample across."""
    mteb_tasks = _mteb_tasks(bench)
    items: dict[str, dict[str, list[TaskItems]]] = {}
    published = set()
    for key, (records, _) in rows.items():
        if not any(record.per_item_file is not None for record in records):
            published.add(key)
            continue
        by_task = one_per_task(records)
        found = {}
        for name in tasks:
            record = by_task.get(name)
            cells = task_items(record, _expected_cells(bench, record, mteb_tasks)) if record is not None else None
            if cells is not None:
                found[name] = cells
        items[key] = found
    options = {"tasks": list(tasks), "resamples": settings.resamples, "seed": settings.seed, "level": settings.level}
    within = within_task_intervals(items, **options)  # type: ignore[arg-type]
    across = across_task_intervals({key: scores for key, (_, scores) in rows.items()}, **options)  # type: ignore[arg-type]
    return BoardIntervals(within=within, across=across, published=frozenset(published))
