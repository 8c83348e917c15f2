"""Of the pairs of runs the full task tells apart, how many keep their order on the quick subset?

τ-b over a whole panel counts every pair of runs, also runs that are one model within noise (fp32, bf16, int8 ONNX:
full-task scores within 0.0002). Their order on the full task is noise, so a subset that swaps them is not wrong,
yet it pulls τ-b down. What a user of a subset needs is narrower: for every pair of panel runs that the full task
separates — ``diff``'s paired test, Holm-adjusted over the tasks the two runs share, p < alpha — does the subset
put them in the same order? τ (separable) = (kept − reversed) / separable pairs.

Every unordered pair of runs is diffed once on the full runs (not only pairs with the baseline), over the tasks both
hold on both sides: the same restriction and Holm family as the verdicts against the baseline, whose full-task diffs
are these same diffs. Nothing is re-scored or re-tested: deltas are the result files' main scores, tests ``diff``'s.
Cost: one full-task ``diff`` per pair, n·(n − 1)/2 for a panel of n runs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from itertools import combinations
from typing import Any

from evalkit.reports.diff import DiffSettings, RunDiff, TaskComparison, diff_runs
from evalkit.subsets.fidelity import POOLED, TIE_WITHIN, Member, main_score, only

__all__ = ["PairDiffs", "PairOrder", "SeparableSummary", "pair_diffs", "pooled_summary", "separable_summary"]

KEPT, REVERSED, TIED = "kept", "reversed", "tied"

PairDiffs = dict[tuple[str, str], RunDiff]  # (label, label) → diff of their full runs, first label as diff's baseline


@dataclass(frozen=True)
class PairOrder:
    """One pair of runs on one task, oriented by the full task: ``higher`` scored higher there."""

    task: str
    higher: str
    lower: str
    full_delta: float  # higher − lower on the full task, 0-1 scale (≥ 0)
    subset_delta: float  # higher − lower on the subset (same orientation; < 0: reversed)
    p_adjusted: float  # diff's Holm-adjusted p-value for the pair on the full task

    @property
    def order(self) -> str:
        """ "kept", "reversed", or "tied" (the subset scores within ``TIE_WITHIN``: rounding, not an order)."""
        if self.subset_delta > TIE_WITHIN:
            return KEPT
        return REVERSED if self.subset_delta < -TIE_WITHIN else TIED

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "order": self.order}


@dataclass(frozen=True)
class SeparableSummary:
    """Separable pairs of one task (or, for the pooled row, counts summed over every task) and their order."""

    task: str
    pairs: int  # all pairs of runs holding the task on both sides
    orders: tuple[PairOrder, ...] = ()  # the separable pairs only (diff's p_adjusted < alpha on the full task)

    @property
    def separable(self) -> int:
        return len(self.orders)

    @property
    def kept(self) -> int:
        return sum(o.order == KEPT for o in self.orders)

    @property
    def reversed(self) -> int:
        return sum(o.order == REVERSED for o in self.orders)

    @property
    def tied(self) -> int:
        return sum(o.order == TIED for o in self.orders)

    @property
    def tau(self) -> float:
        """(kept − reversed) / separable: 1 when the subset keeps every order the full task is sure of; NaN
        when the full task separates no pair (nothing to keep)."""
        return (self.kept - self.reversed) / self.separable if self.separable else math.nan

    @property
    def changed(self) -> tuple[PairOrder, ...]:
        """The separable pairs the subset reverses or ties: what a user of the subset would get wrong."""
        return tuple(o for o in self.orders if o.order != KEPT)

    def to_dict(self) -> dict[str, Any]:
        """Counts, τ (None for NaN) and the reversed or tied pairs with their deltas (0-1 scale)."""
        return {
            "pairs": self.pairs,
            "separable": self.separable,
            "kept": self.kept,
            "reversed": self.reversed,
            "tied": self.tied,
            "tau": self.tau if math.isfinite(self.tau) else None,
            "changed": [o.to_dict() for o in self.changed],
        }


def pair_diffs(members: Sequence[Member], first: Member, settings: DiffSettings) -> PairDiffs:
    """``diff`` of the full runs of every unordered pair of members that shares a task, over the tasks both hold
    on both sides. ``first`` (the baseline) is the diff's baseline side of its pairs, as in its verdicts, so those
    diffs serve the verdicts too; other pairs follow panel order. One diff per pair, cached for the call."""
    ordered = [first, *(m for m in members if m is not first)]
    diffs: PairDiffs = {}
    for a, b in combinations(ordered, 2):
        tasks = a.tasks & b.tasks
        if tasks:
            diffs[(a.label, b.label)] = diff_runs(only(a.full, tasks), only(b.full, tasks), settings, power=False)
    return diffs


def _comparison(diffs: PairDiffs, a: Member, b: Member, task: str) -> TaskComparison:
    diff = diffs[(a.label, b.label)] if (a.label, b.label) in diffs else diffs[(b.label, a.label)]
    return next(c for c in diff.tasks if c.task == task)


def _order(task: str, a: Member, b: Member, p_adjusted: float) -> PairOrder:
    full_a, full_b = main_score(a.full, task), main_score(b.full, task)
    higher, lower = (a, b) if full_a >= full_b else (b, a)
    return PairOrder(
        task=task,
        higher=higher.label,
        lower=lower.label,
        full_delta=abs(full_a - full_b),
        subset_delta=main_score(higher.subset, task) - main_score(lower.subset, task),
        p_adjusted=p_adjusted,
    )


def separable_summary(task: str, members: Sequence[Member], diffs: PairDiffs) -> SeparableSummary:
    """One task over ``members`` (those holding it on both sides), from the pairs' full-task diffs."""
    pairs = list(combinations(members, 2))
    orders = []
    for a, b in pairs:
        comparison = _comparison(diffs, a, b, task)
        if comparison.significant and comparison.p_adjusted is not None:
            orders.append(_order(task, a, b, comparison.p_adjusted))
    return _summary(task, len(pairs), orders)


def _summary(task: str, pairs: int, orders: list[PairOrder]) -> SeparableSummary:
    return SeparableSummary(task, pairs, tuple(orders))


def pooled_summary(rows: Iterable[SeparableSummary]) -> SeparableSummary:
    """Counts summed over tasks (a pair of runs counts once per task it is compared on)."""
    rows = list(rows)
    return _summary(POOLED, sum(r.pairs for r in rows), [o for r in rows for o in r.orders])
