"""Every model's per-item data for a task, aligned, and the task's statistic for all models on many resamples.

``TaskItems`` is what a caller hands ``evalkit.stats.rank_intervals``: one model's per-item values for one
(split, subset) cell of a task. The kernel here stacks every model's cell into one items × models array, checks that
the models scored the same items, and computes the task statistic for every model on a block of bootstrap resamples
given as item multiplicities — the mean with one matrix product, Pearson with three, Spearman with one gather and
one cumulative sum per model (mid-ranks as ``rankdata`` gives them on the materialised resample; the tie handling
is ``evalkit.stats.paired``'s, so the two never break ties differently).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from evalkit.errors import DataError
from evalkit.stats.paired import STATISTICS, _TieGroups, _weighted_moments

__all__ = ["StackedCell", "TaskData", "TaskItems", "stack_task", "statistic_on_resamples"]


@dataclass(frozen=True, eq=False)  # holds arrays: compared by identity
class TaskItems:
    """One model's per-item data for one (split, subset) cell of a task, aligned with every other model's.

    ``statistic == "mean"``: ``values`` are per-item metric values (per-query nDCG@10, ...) and ``gold`` is None.
    ``"spearman"``/``"pearson"``: ``values`` are predicted similarities per pair and ``gold`` the human scores.
    ``ids`` (optional) are the item ids in the order of ``values``: when given, every model's must be identical (in
    that order), which is how misaligned items are caught; without ids only the lengths can be checked. A task of
    several cells is a sequence of ``TaskItems``, in the same cell order for every model (e.g. sorted by
    (split, subset)); its statistic is the plain mean over its cells, as mteb scores a task.
    """

    statistic: str
    values: np.ndarray
    gold: np.ndarray | None = None
    ids: Sequence[str] | None = None

    def __post_init__(self) -> None:
        if self.statistic not in STATISTICS:
            raise DataError(f"unknown statistic '{self.statistic}' (known: {', '.join(STATISTICS)})")
        values = np.asarray(self.values, dtype=np.float64)
        if values.ndim != 1 or values.shape[0] < 2:
            raise DataError(f"a task cell needs a 1-d array of at least two items (got shape {values.shape})")
        if not np.isfinite(values).all():
            raise DataError("per-item values must be finite numbers")
        object.__setattr__(self, "values", values)
        if (self.gold is None) != (self.statistic == "mean"):
            raise DataError(f"gold scores go with a correlation statistic, and only there (statistic {self.statistic})")
        if self.gold is not None:
            gold = np.asarray(self.gold, dtype=np.float64)
            if gold.shape != values.shape or not np.isfinite(gold).all():
                raise DataError("gold scores must be finite and aligned with the values")
            object.__setattr__(self, "gold", gold)
        if self.ids is not None:
            if len(self.ids) != values.shape[0]:
                raise DataError(f"{len(self.ids)} item ids for {values.shape[0]} values")
            object.__setattr__(self, "ids", tuple(str(item) for item in self.ids))

    @property
    def n(self) -> int:
        return int(self.values.shape[0])


TaskData = TaskItems | Sequence[TaskItems]
"""A task's data for one model: one cell, or its cells in a fixed order."""


@dataclass(frozen=True, eq=False)  # holds arrays: compared by identity
class StackedCell:
    """One cell of one task, every model's values stacked as columns (``values``: items × models)."""

    statistic: str
    values: np.ndarray
    gold: np.ndarray | None

    @property
    def n(self) -> int:
        return int(self.values.shape[0])

    def observed(self) -> np.ndarray:
        return self.on(np.ones((1, self.n)))[0]

    def on(self, counts: np.ndarray) -> np.ndarray:
        """The statistic per model on each resample (``counts``: resamples × items, item multiplicities).

        A correlation is Pearson's over the drawn items, weighted by multiplicity (Spearman: on the mid-ranks of the
        materialised resample, duplicates tied, as ``rankdata`` ranks them). Its covariance is
        ``Σ c·gold_dev·y`` since the weighted gold deviations sum to 0; the model side is vectorised, and Spearman
        for predictions without ties needs only a cumulative sum per model (the tie-free shortcut below).
        """
        total = counts.sum(axis=1, keepdims=True)
        if self.statistic == "mean":
            return counts @ self.values / total
        assert self.gold is not None
        gold = self._tie_groups[0].ranks(counts) if self.statistic == "spearman" else self.gold
        gold_deviation, gold_square = _weighted_moments(gold, counts, total)
        weighted = counts * gold_deviation
        if self.statistic == "pearson":
            centred = self.values - self.values.mean(axis=0)  # fewer cancellations; a constant column stays 0
            mean = counts @ centred / total
            covariance, square = weighted @ centred, counts @ (centred * centred) - total * mean * mean
        else:
            covariance, square = self._rank_moments(counts, weighted)
        denominator = np.sqrt(gold_square[:, None] * np.maximum(square, 0.0))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(denominator > 0, covariance / denominator, 0.0)

    def _rank_moments(self, counts: np.ndarray, weighted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per model: ``Σ weighted·rank`` and the weighted sum of squared rank deviations, resamples × models.

        Without ties among a model's predictions, the mid-rank of an item drawn ``c`` times is ``C - (c - 1)/2``
        (``C``: cumulative count up to it in the model's order), and the squared deviations sum to
        ``(N³ - N)/12 - Σ (c³ - c)/12``, the same for every such model: one gather and one cumulative sum each.
        """
        total = counts.sum(axis=1)
        tie_free_square = (total**3 - total - (counts**3 - counts).sum(axis=1)) / 12
        own = 0.5 * np.einsum("ij,ij->i", weighted, counts)
        covariance = np.empty((counts.shape[0], self.values.shape[1]))
        square = np.empty_like(covariance)
        for model, groups in enumerate(self._tie_groups[1:]):
            if groups.first.shape[0] == self.n:  # no ties
                cumulative = np.cumsum(np.take(counts, groups.order, axis=1), axis=1)
                covariance[:, model] = np.einsum("ij,ij->i", np.take(weighted, groups.order, axis=1), cumulative) - own
                square[:, model] = tie_free_square
            else:
                ranks = groups.ranks(counts)
                covariance[:, model] = np.einsum("ij,ij->i", weighted, ranks)
                square[:, model] = _weighted_moments(ranks, counts, total[:, None])[1]
        return covariance, square

    @cached_property
    def _tie_groups(self) -> list[_TieGroups]:
        """The gold scores' sort order and tie groups, then each model's: ranks of any resample in O(items)."""
        assert self.gold is not None
        return [_TieGroups(self.gold), *(_TieGroups(self.values[:, m]) for m in range(self.values.shape[1]))]


def _stack(task: str, models: Sequence[str], data: Sequence[Sequence[TaskItems]], index: int) -> StackedCell:
    """Cell ``index`` of ``task`` for every model, checked to be the same items (and gold scores) everywhere."""
    first = data[0][index]
    for model, cells in zip(models, data, strict=True):
        cell = cells[index]
        where = f"task '{task}' cell {index}: model '{model}'"
        if cell.statistic != first.statistic:
            raise DataError(f"{where} has statistic '{cell.statistic}', model '{models[0]}' '{first.statistic}'")
        if cell.n != first.n:
            raise DataError(f"{where} has {cell.n} items, model '{models[0]}' {first.n}: items are not aligned")
        if (cell.ids is None) != (first.ids is None) or (cell.ids is not None and cell.ids != first.ids):
            raise DataError(f"{where} scored other items than model '{models[0]}' (item ids differ)")
        if first.gold is not None and not np.array_equal(cell.gold, first.gold):
            raise DataError(f"{where} has other gold scores than model '{models[0]}'")
    values = np.stack([cells[index].values for cells in data], axis=1)
    return StackedCell(first.statistic, values, first.gold)


def stack_task(task: str, models: Sequence[str], items: Mapping[str, Mapping[str, TaskData]]) -> list[StackedCell]:
    """``task``'s cells, each stacked over ``models`` (in that order); a DataError when they are not aligned."""
    data = [[value] if isinstance(value, TaskItems) else list(value) for value in (items[m][task] for m in models)]
    counts = {len(cells) for cells in data}
    if counts == {0}:
        raise DataError(f"task '{task}' has no cells (no per-item data)")
    if len(counts) > 1:
        raise DataError(f"task '{task}': models have different numbers of cells ({sorted(counts)})")
    return [_stack(task, models, data, index) for index in range(len(data[0]))]


def statistic_on_resamples(cell: Sequence[TaskItems], counts: np.ndarray) -> np.ndarray:
    """Each model's statistic on each resample of one cell: ``cell`` holds the models' aligned ``TaskItems``,
    ``counts`` (resamples × items) how often each item is drawn; returns resamples × models. The kernel both
    ``within_task_intervals`` and its tests use (a resample drawn by hand checks it against scipy)."""
    models = [str(index) for index in range(len(cell))]
    stacked = _stack("(given)", models, [[items] for items in cell], 0)
    return stacked.on(np.atleast_2d(np.asarray(counts, dtype=np.float64)))
