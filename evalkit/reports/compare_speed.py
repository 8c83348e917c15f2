"""What the ablation report adds to per-task deltas: per-type deltas with intervals, and speed beside score.

A task type's delta is the plain mean of its tasks' deltas (each task's main score as the diff computed it). Its
interval is a percentile interval over joint resamples: in each resample every task of the type has its items
resampled (within each split and subset, as the diff's paired bootstrap does, from the per-item scores), each
task's delta is recomputed on its resample, and the type's delta is their mean. Averaging the tasks' own intervals
would not be one (the ends of several intervals do not occur together); a type with a task lacking per-item scores
gets no interval.

Speed comes from the run records (:func:`evalkit.results.throughput.run_throughput`): texts encoded per second of
encoding over the compared tasks, "n/a" when no task of a run encoded a text (all vectors read from the cache, or
published files without records). An ablation's speed ratio is its texts/s over the baseline's.
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from statistics import fmean
from typing import Any

import numpy as np

from evalkit.reports.diff import RunDiff
from evalkit.reports.runs import Run, paired_cells
from evalkit.results.throughput import Throughput, run_throughput
from evalkit.stats.paired import PairedItems, bootstrap_deltas


@dataclass(frozen=True)
class TypeDelta:
    """One task type's mean delta (0-1 scale) and its interval; ``low``/``high`` None with ``note`` saying why."""

    task_type: str
    tasks: tuple[str, ...]
    delta: float
    low: float | None
    high: float | None
    note: str | None = None

    @property
    def excludes_zero(self) -> bool:
        return self.low is not None and self.high is not None and (self.low > 0 or self.high < 0)


def _seed(seed: int, task: str, cell: int) -> int:
    """A resampling seed per (task, cell), fixed by the settings' seed: tasks drawn independently, reproducibly."""
    digest = hashlib.sha256(f"{seed}\0{task}\0{cell}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def mean_delta_interval(
    cells_per_task: Sequence[tuple[str, Sequence[PairedItems]]], *, resamples: int, seed: int, alpha: float
) -> tuple[float, float]:
    """Percentile interval of the mean over tasks of their deltas, every task's items resampled in each replicate.

    ``cells_per_task``: (task name, its cells) — a task's delta on a resample is the mean of its cells' deltas,
    as mteb scores a task with several splits or subsets.
    """
    per_task = [
        np.mean([bootstrap_deltas(cell, resamples, _seed(seed, name, i)) for i, cell in enumerate(cells)], axis=0)
        for name, cells in cells_per_task
    ]
    joint = np.mean(per_task, axis=0)
    low, high = np.quantile(joint, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


# The Markdown and the HTML of one report share one computation (the resampling is the slow part). ``RunDiff`` is
# unhashable (it holds lists), so entries are keyed by id() but hold only a weak reference to their diff: the
# reference's callback drops the entry when the diff is collected, before its id can be reused, and a hit must
# still be the very object. No diff is kept alive by this cache and no later diff can read an earlier one's result.
_COMPUTED: dict[int, tuple[weakref.ref[RunDiff], list[TypeDelta]]] = {}


def _forget(key: int, ref: weakref.ref[RunDiff]) -> None:
    kept = _COMPUTED.get(key)
    if kept is not None and kept[0] is ref:
        del _COMPUTED[key]


def type_deltas(diff: RunDiff) -> list[TypeDelta]:
    """Per task type, sorted by name: the mean of its tasks' deltas and its joint-resampling interval."""
    key = id(diff)
    kept = _COMPUTED.get(key)
    if kept is not None and kept[0]() is diff:
        return kept[1]
    found = _type_deltas(diff)
    _COMPUTED[key] = (weakref.ref(diff, partial(_forget, key)), found)
    return found


def _paired(diff: RunDiff, name: str) -> tuple[Any, str | None]:
    """The task's paired per-item cells, or (None, why) when either run lacks its record."""
    base, cand = diff.baseline.tasks.get(name), diff.candidate.tasks.get(name)
    if base is None or cand is None:
        return None, "no run record on both sides"
    return paired_cells(base, cand)


def _type_deltas(diff: RunDiff) -> list[TypeDelta]:
    by_type: dict[str, list[str]] = {}
    for task in diff.tasks:
        by_type.setdefault(task.task_type, []).append(task.task)
    deltas = {t.task: t.delta for t in diff.tasks}
    found = []
    for task_type, names in sorted(by_type.items()):
        cells = [(name, _paired(diff, name)) for name in names]
        lacking = [name for name, (task_cells, _) in cells if task_cells is None]
        delta = fmean(deltas[name] for name in names)
        if lacking:
            note = f"no interval: no per-item scores for {', '.join(lacking)}"
            found.append(TypeDelta(task_type, tuple(names), delta, None, None, note))
            continue
        settings = diff.settings
        low, high = mean_delta_interval(
            [(name, task_cells) for name, (task_cells, _) in cells if task_cells is not None],
            resamples=settings.resamples,
            seed=settings.seed,
            alpha=settings.alpha,
        )
        found.append(TypeDelta(task_type, tuple(names), delta, low, high))
    return found


@dataclass(frozen=True)
class SpeedRow:
    """A run's encode speed beside its mean main score over the tasks every compared run has."""

    label: str
    throughput: Throughput | None  # None: no task of the run encoded a text ("n/a")
    mean_score: float  # 0-1 scale
    ratio: float | None  # texts/s over the baseline's; None where either is n/a
    score_delta: float | None  # mean score minus the baseline's; None for the baseline itself


def _run_speed(run: Run, tasks: Sequence[str]) -> Throughput | None:
    return run_throughput(run.tasks[name].record for name in tasks if name in run.tasks)


def speed_rows(diffs: Sequence[RunDiff], labels: Sequence[str]) -> list[SpeedRow]:
    """The baseline first, then each run: texts/s, speed ratio, mean score and its change, over the common tasks."""
    common = sorted(set.intersection(*({t.task for t in d.tasks} for d in diffs)))
    compared = sorted({t.task for d in diffs for t in d.tasks})
    base_speed = _run_speed(diffs[0].baseline, compared)
    base_rate = base_speed.texts_per_s if base_speed is not None else None
    base_score = fmean(t.baseline for t in diffs[0].tasks if t.task in common) if common else float("nan")
    rows = [SpeedRow("baseline", base_speed, base_score, None, None)]
    for diff, label in zip(diffs, labels, strict=True):
        speed = _run_speed(diff.candidate, [t.task for t in diff.tasks])
        rate = speed.texts_per_s if speed is not None else None
        score = fmean(t.candidate for t in diff.tasks if t.task in common) if common else float("nan")
        ratio = rate / base_rate if rate is not None and base_rate else None
        rows.append(SpeedRow(label, speed, score, ratio, score - base_score))
    return rows


def rate_cell(value: float | None) -> str:
    """Texts or tokens per second as a reader wants them; "n/a" when not measured (never 0)."""
    if value is None:
        return "n/a"
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def ratio_cell(row: SpeedRow) -> str:
    return f"×{row.ratio:.2f}" if row.ratio is not None else "n/a"


def speed_cells(row: SpeedRow) -> dict[str, str]:
    """One row of the speed table, unescaped."""
    speed = row.throughput
    return {
        "run": row.label,
        "texts/s": rate_cell(speed.texts_per_s if speed else None),
        "tokens/s": rate_cell(speed.tokens_per_s if speed else None),
        "speed vs baseline": ratio_cell(row) if row.score_delta is not None else "",
        "mean score": f"{100 * row.mean_score:.2f}",
        "score change": f"{100 * row.score_delta:+.2f}" if row.score_delta is not None else "",
        "device": (speed.device or "n/a") if speed else "n/a",
        "precision": (speed.precision or "n/a") if speed else "n/a",
        "speed from": speed.source if speed else "no texts encoded in these records",
    }


def type_cells(delta: TypeDelta) -> tuple[str, str]:
    """(delta, interval) in points, unescaped."""
    if delta.low is None or delta.high is None:
        return f"{100 * delta.delta:+.2f}", f"n/a ({delta.note})"
    return f"{100 * delta.delta:+.2f}", f"[{100 * delta.low:+.2f}, {100 * delta.high:+.2f}]"


SPEED_NOTE = (
    "texts/s: texts encoded per second of encoding (tokenizing, forward passes, cache writes) over the compared "
    "tasks, from the run records; n/a where no text was encoded (vectors read from the cache, or no run records). "
    "Records older than the throughput object: texts from the differences of the run's cumulative embedding_stats, "
    "seconds from the encode timings. Mean score over the tasks every run has."
)
TYPE_NOTE = (
    "type delta: the mean of its tasks' deltas; interval: percentile interval over joint resamples, each resampling "
    "every task's items (per split and subset) and averaging the tasks' resampled deltas"
)

__all__ = [
    "SPEED_NOTE",
    "TYPE_NOTE",
    "SpeedRow",
    "TypeDelta",
    "mean_delta_interval",
    "rate_cell",
    "ratio_cell",
    "speed_cells",
    "speed_rows",
    "type_cells",
    "type_deltas",
]
