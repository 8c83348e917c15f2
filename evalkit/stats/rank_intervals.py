"""Which leaderboard ranks are real: a rank interval per model, by two resampling units that answer differently.

A leaderboard ranks models by the benchmark mean (the plain mean over tasks of each task's main score), and a reader
takes rank 3 vs rank 5 as a fact. How sure that order is depends on what is taken as random:

- **within tasks** (``within_task_intervals``): the benchmark's tasks are fixed; each task's queries or pairs are a
  sample. Paired bootstrap over the items of each task — in a resample every model is scored on the *same* resampled
  items, tasks are resampled independently, and a task of several (split, subset) cells resamples each cell within
  itself — then each task's statistic is recomputed per model (the mean of per-item values, or Spearman/Pearson with
  the gold scores, ties as ``rankdata`` ranks them: ``evalkit.stats.task_items``, on ``evalkit.stats.paired``'s
  kernels), the benchmark mean recomputed, and the models ranked.
- **across tasks** (``across_task_intervals``): the tasks are a sample of the tasks one could have chosen. Bootstrap
  over the benchmark's tasks (with replacement), each model's mean over the resampled tasks, then ranked.

An audit of MTEB(eng, v2) found the two disagree wildly (about 63% of adjacent pairs separable within tasks, 4 of 180
across tasks), so every result names its unit. Both are pure: arrays in, a ``RankIntervals`` record out; no file IO.

Rules, the same for both units:

- **Rank**: 1 is best; models whose means are equal (within 1e-12) share the *best* rank of their group, as the
  leaderboard's Borda rank gives ties. Ranks are among the models of this result only (models left out are not
  counted), by the benchmark *mean* — not the leaderboard's Borda rank, which is no mean and has no bootstrap here.
- **Interval**: the percentile interval of a model's rank over the resamples at ``level`` (0.95: the 2.5% and 97.5%
  points); the low end rounds down and the high end up (``np.quantile`` methods "lower"/"higher"), so both are
  whole ranks and the interval never claims more than the resamples show.
- **Separable adjacent pair**: in the observed order (best first), a model and the next one are separable when the
  two-sided percentile interval at ``level`` of the bootstrap distribution of their mean difference excludes 0.
- **Models left out**: a model without a task (no score, or no per-item scores for it) has no benchmark mean — the
  leaderboard's mean is empty, never partial — so it is left out of the resampling and named in ``notes`` with why.
- **Determinism**: the same inputs, ``seed`` and ``resamples`` give identical intervals. Within tasks each task
  draws from its own stream (``SeedSequence(seed).spawn``, in the order of ``tasks``), so adding or dropping a model
  does not change the resamples the others see.

Memory is bounded: resamples are drawn in blocks of ``_BLOCK`` (counts of ``_BLOCK × items``), and only the
``resamples × models`` matrix of benchmark means is kept.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from evalkit.errors import DataError, EvalkitError
from evalkit.stats.paired import _counts
from evalkit.stats.task_items import TaskData, TaskItems, stack_task, statistic_on_resamples

__all__ = [
    "UNITS",
    "AdjacentPair",
    "ModelRank",
    "RankIntervals",
    "TaskData",
    "TaskItems",
    "across_task_intervals",
    "statistic_on_resamples",
    "within_task_intervals",
]

UNITS = ("within tasks", "across tasks")
_BLOCK = 256  # resamples drawn at once: counts of _BLOCK × items floats per cell
_TIE = 1e-12  # means closer than this are tied (share the best rank)


@dataclass(frozen=True)
class ModelRank:
    """One model's observed place and its rank interval. ``score``: the benchmark mean (0-1 scale) on all the data,
    as this unit computes it (within tasks: recomputed from the items, so it equals the leaderboard's mean when the
    per-item scores are the ones its scores came from)."""

    model: str
    score: float
    rank: int
    low: int
    high: int


@dataclass(frozen=True)
class AdjacentPair:
    """A model (``upper``) and the one just below it in the observed order: their mean difference (upper − lower,
    ≥ 0), its percentile interval at the result's level, and whether that interval excludes 0."""

    upper: str
    lower: str
    difference: float
    low: float
    high: float
    separable: bool


@dataclass(frozen=True)
class RankIntervals:
    """Rank intervals by one resampling unit. ``models``: best first (observed order); ``pairs``: one per adjacent
    pair in that order; ``notes``: model → why it was left out (it has no interval and is not ranked here)."""

    unit: str  # one of UNITS
    level: float
    resamples: int
    seed: int
    tasks: tuple[str, ...]
    models: tuple[ModelRank, ...]
    pairs: tuple[AdjacentPair, ...]
    notes: Mapping[str, str] = field(default_factory=dict)

    def by_model(self) -> dict[str, ModelRank]:
        """Model name → its record, for joining onto a leaderboard's rows."""
        return {entry.model: entry for entry in self.models}

    def separable_below(self) -> dict[str, bool]:
        """Model name → whether it is separable from the model just below it (the last model has no entry)."""
        return {pair.upper: pair.separable for pair in self.pairs}


def _check_settings(resamples: int, level: float) -> None:
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 1:
        raise EvalkitError(f"resamples must be a whole number ≥ 1 (got {resamples!r})", field="resamples")
    if not 0 < level < 1:
        raise EvalkitError(f"level must be between 0 and 1, e.g. 0.95 (got {level!r})", field="level")


def _task_list(by_model: Mapping[str, Mapping[str, object]], tasks: Sequence[str] | None) -> tuple[str, ...]:
    names = tuple(tasks) if tasks is not None else tuple(sorted({t for row in by_model.values() for t in row}))
    if not names:
        raise DataError("no tasks to resample")
    if len(set(names)) != len(names):
        raise DataError("a task is named twice in the task list")
    return names


def _missing_tasks(by_model: Mapping[str, Mapping[str, object]], tasks: Sequence[str], why: str) -> dict[str, str]:
    """Model → why it is left out (``why`` formatted with its first missing task), for models lacking a task."""
    notes = {}
    for model, row in by_model.items():
        missing = next((task for task in tasks if task not in row or row[task] is None), None)
        if missing is not None:
            notes[model] = why.format(missing)
    return notes


def _ranks(means: np.ndarray) -> np.ndarray:
    """Per row of ``means`` (rows × models): 1 + how many models are strictly better (ties share the best rank)."""
    return 1 + (means[:, None, :] > means[:, :, None] + _TIE).sum(axis=2)


def _summarise(
    models: Sequence[str], observed: np.ndarray, resampled: np.ndarray, settings: tuple[int, int, float]
) -> tuple[tuple[ModelRank, ...], tuple[AdjacentPair, ...]]:
    """Observed order and ranks, each model's rank interval, and each adjacent pair's separability."""
    resamples, _, level = settings
    alpha = 1 - level
    observed_ranks = _ranks(observed[None, :])[0]
    order = sorted(range(len(models)), key=lambda m: (-observed[m], models[m]))
    ranks = np.concatenate([_ranks(resampled[s : s + _BLOCK]) for s in range(0, resamples, _BLOCK)])
    low = np.quantile(ranks, alpha / 2, axis=0, method="lower")
    high = np.quantile(ranks, 1 - alpha / 2, axis=0, method="higher")
    entries = tuple(
        ModelRank(models[m], float(observed[m]), int(observed_ranks[m]), int(low[m]), int(high[m])) for m in order
    )
    pairs = []
    for upper, lower in itertools.pairwise(order):
        differences = resampled[:, upper] - resampled[:, lower]
        lo, hi = (float(v) for v in np.quantile(differences, [alpha / 2, 1 - alpha / 2]))
        gap = float(observed[upper] - observed[lower])
        pairs.append(AdjacentPair(models[upper], models[lower], gap, lo, hi, bool(lo > 0 or hi < 0)))
    return entries, tuple(pairs)


def _result(
    unit: str,
    tasks: tuple[str, ...],
    models: Sequence[str],
    scores: tuple[np.ndarray, np.ndarray],
    settings: tuple[int, int, float],
    notes: dict[str, str],
) -> RankIntervals:
    resamples, seed, level = settings
    entries, pairs = _summarise(models, scores[0], scores[1], settings) if models else ((), ())
    return RankIntervals(unit, level, resamples, seed, tasks, entries, pairs, notes)


def within_task_intervals(
    items: Mapping[str, Mapping[str, TaskData]],
    *,
    tasks: Sequence[str] | None = None,
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> RankIntervals:
    """Rank intervals by resampling the items of each task (unit "within tasks"; the rules: the module docstring).

    ``items``: model → task → that model's ``TaskData`` for the task. ``tasks``: the benchmark's tasks (default:
    every task any model has); a model lacking one of them is left out, with its reason in ``notes``. Raises
    ``DataError`` (one line, naming task, cell and model) when models' items are not aligned — other item ids or
    counts, other gold scores, another statistic or number of cells — or a task has no items; ``EvalkitError`` for
    a bad ``resamples``/``level``.
    """
    _check_settings(resamples, level)
    task_names = _task_list(items, tasks)
    notes = _missing_tasks(items, task_names, "no per-item scores for task '{}'")
    models = [m for m in items if m not in notes]
    if not models:
        return _result(UNITS[0], task_names, [], (np.empty(0), np.empty((0, 0))), (resamples, seed, level), notes)
    cells = [stack_task(task, models, items) for task in task_names]
    observed = np.mean([np.mean([cell.observed() for cell in task], axis=0) for task in cells], axis=0)
    resampled = np.zeros((resamples, len(models)))
    streams = [np.random.default_rng(child) for child in np.random.SeedSequence(seed).spawn(len(cells))]
    for task, rng in zip(cells, streams, strict=True):
        for start in range(0, resamples, _BLOCK):
            rows = min(_BLOCK, resamples - start)
            statistic = sum(cell.on(_counts(rng, rows, cell.n)) for cell in task) / len(task)
            resampled[start : start + rows] += statistic / len(cells)
    return _result(UNITS[0], task_names, models, (observed, resampled), (resamples, seed, level), notes)


def _score_or_none(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def across_task_intervals(
    task_scores: Mapping[str, Mapping[str, float | None]],
    *,
    tasks: Sequence[str] | None = None,
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> RankIntervals:
    """Rank intervals by resampling the benchmark's tasks (unit "across tasks"; the rules: the module docstring).

    ``task_scores``: model → task → main score (0-1 scale; None, NaN or absent: missing). ``tasks``: the
    benchmark's tasks (default: every task any model has). A model missing a task is left out — the leaderboard's
    mean is empty for it — with its reason in ``notes``. Needs at least two tasks (one task resampled is always the
    same task: no interval); raises ``DataError`` otherwise, ``EvalkitError`` for a bad ``resamples``/``level``.
    """
    _check_settings(resamples, level)
    task_names = _task_list(task_scores, tasks)
    if len(task_names) < 2:
        raise DataError(f"resampling across tasks needs at least two tasks (got {len(task_names)})")
    finite = {model: {task: _score_or_none(row.get(task)) for task in task_names} for model, row in task_scores.items()}
    notes = _missing_tasks(finite, task_names, "no score for task '{}' (its benchmark mean is empty)")
    columns = {model: [row[task] for task in task_names] for model, row in finite.items() if model not in notes}
    models = list(columns)
    scores = np.array([columns[m] for m in models], dtype=np.float64).T.reshape(len(task_names), len(models))
    rng = np.random.default_rng(seed)
    resampled = np.empty((resamples, len(models)))
    for start in range(0, resamples, _BLOCK):
        rows = min(_BLOCK, resamples - start)
        resampled[start : start + rows] = _counts(rng, rows, len(task_names)) @ scores / len(task_names)
    observed = scores.mean(axis=0)
    return _result(UNITS[1], task_names, models, (observed, resampled), (resamples, seed, level), notes)
