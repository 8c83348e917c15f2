"""Paired significance tests between two systems scored on the same items, and Holm's correction across tasks.

A task's main score is a *statistic* over its items: the mean of per-query values (retrieval: nDCG@10, MAP, ...) or
a correlation between gold and predicted similarities over pairs (STS: Spearman, Pearson). Every test here works on
the statistic itself, so STS is tested on Spearman rather than on a per-pair proxy:

- ``bootstrap``: paired bootstrap over items (Efron & Tibshirani; Koehn 2004 for MT, Sakai 2006 for IR). The
  p-value is the share of resampled deltas at least as far from the observed delta as the observed delta is from 0
  (the shift method); the confidence interval is the percentile interval.
- ``permutation``: randomisation test (Fisher; Smucker et al. 2007, ranx's ``fisher``): each item's two scores are
  swapped with probability ½. Its confidence interval is the bootstrap's (a permutation gives no interval).
- ``ttest``: paired t-test (ranx's ``student``); for a mean statistic on the per-item differences, for a
  correlation on delete-a-group jackknife pseudo-values of the delta.

Every resampling uses a fixed seed: the same inputs give the same p-values on every run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

TESTS = ("bootstrap", "permutation", "ttest")
STATISTICS = ("mean", "spearman", "pearson")
_BLOCK = 256  # resamples computed at once; bounds memory at _BLOCK × items


@dataclass(frozen=True)
class PairedItems:
    """Both systems' scores on the same items, aligned.

    ``statistic == "mean"``: ``baseline``/``candidate`` are per-item metric values and ``gold`` is None.
    ``"spearman"``/``"pearson"``: they are predicted similarities and ``gold`` holds the human scores.
    """

    statistic: str
    baseline: np.ndarray
    candidate: np.ndarray
    gold: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.statistic not in STATISTICS:
            raise ValueError(f"unknown statistic '{self.statistic}'")
        if self.baseline.shape != self.candidate.shape or self.baseline.ndim != 1:
            raise ValueError("baseline and candidate must be aligned 1-d arrays")
        if (self.gold is None) != (self.statistic == "mean"):
            raise ValueError("gold scores go with a correlation statistic, and only there")

    @property
    def n(self) -> int:
        return int(self.baseline.shape[0])


@dataclass(frozen=True)
class PairedResult:
    test: str
    n: int
    baseline: float  # the statistic on all items
    candidate: float
    delta: float  # candidate - baseline
    ci_low: float
    ci_high: float
    confidence: float  # 1 - alpha
    p_value: float
    wins: int  # items where the candidate is better
    ties: int
    losses: int


def _rank_rows(values: np.ndarray) -> np.ndarray:
    return scipy_stats.rankdata(values, axis=-1)


def _correlation_rows(gold: np.ndarray, predicted: np.ndarray, statistic: str) -> np.ndarray:
    """Row-wise correlation of ``gold`` and ``predicted`` (both ``(rows, items)``)."""
    if statistic == "spearman":
        gold, predicted = _rank_rows(gold), _rank_rows(predicted)
    gold = gold - gold.mean(axis=-1, keepdims=True)
    predicted = predicted - predicted.mean(axis=-1, keepdims=True)
    denominator = np.sqrt((gold * gold).sum(axis=-1) * (predicted * predicted).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, (gold * predicted).sum(axis=-1) / denominator, 0.0)


def statistic_value(items: PairedItems, scores: np.ndarray) -> float:
    if items.statistic == "mean":
        return float(np.mean(scores))
    assert items.gold is not None
    return float(_correlation_rows(items.gold[None, :], scores[None, :], items.statistic)[0])


class _TieGroups:
    """The sort order of a value array and its groups of equal values, to rank any weighted subset in O(n).

    A bootstrap resample or a permutation is a vector of counts over the items; the (average, 1-based) rank of an
    item within it is the count of everything smaller plus half its own group: exactly what ``rankdata`` gives on
    the materialised resample, duplicates included, without sorting each resample.
    """

    def __init__(self, values: np.ndarray) -> None:
        self.order = np.argsort(values, kind="stable")
        ordered = values[self.order]
        new_group = np.empty(ordered.shape[0], dtype=bool)
        new_group[0] = True
        new_group[1:] = ordered[1:] != ordered[:-1]
        self.group_of_sorted = np.cumsum(new_group) - 1
        self.first = np.flatnonzero(new_group)
        self.last = np.append(self.first[1:] - 1, ordered.shape[0] - 1)

    def ranks(self, counts: np.ndarray) -> np.ndarray:
        cumulative = np.cumsum(counts[:, self.order], axis=1)
        before = np.where(self.first > 0, cumulative[:, np.maximum(self.first - 1, 0)], 0)
        group_rank = (before + cumulative[:, self.last] + 1) * 0.5
        ranks = np.empty(cumulative.shape, dtype=np.float64)
        ranks[:, self.order] = group_rank[:, self.group_of_sorted]
        return ranks


Moments = tuple[np.ndarray, np.ndarray]


def _weighted_moments(x: np.ndarray, counts: np.ndarray, total: np.ndarray) -> Moments:
    """Per row: the deviations of ``x`` from its weighted mean, and their weighted sum of squares."""
    mean = (counts * x).sum(axis=1, keepdims=True) / total if x.ndim == 2 else (counts @ x)[:, None] / total
    deviation = x - mean
    return deviation, np.einsum("ij,ij,ij->i", counts, deviation, deviation)


def _weighted_correlation(
    x: np.ndarray, y: np.ndarray, counts: np.ndarray, x_moments: Moments | None = None
) -> np.ndarray:
    """Pearson correlation per row of ``counts`` (item multiplicities) between per-item ``x`` and ``y``."""
    total = counts.sum(axis=1, keepdims=True)
    x_dev, x_square = x_moments if x_moments is not None else _weighted_moments(x, counts, total)
    y_dev, y_square = _weighted_moments(y, counts, total)
    covariance = np.einsum("ij,ij,ij->i", counts, x_dev, y_dev)
    denominator = np.sqrt(x_square * y_square)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, covariance / denominator, 0.0)


def _counts(rng: np.random.Generator, rows: int, n: int) -> np.ndarray:
    """``rows`` bootstrap resamples of ``n`` items, as multiplicities per item (float64, for the products)."""
    index = rng.integers(0, n, size=(rows, n)) + (np.arange(rows) * n)[:, None]
    return np.bincount(index.ravel(), minlength=rows * n).reshape(rows, n).astype(np.float64)


def bootstrap_deltas(items: PairedItems, resamples: int, seed: int) -> np.ndarray:
    """Delta of the statistic on each of ``resamples`` bootstrap resamples (item multiplicities per resample)."""
    rng = np.random.default_rng(seed)
    deltas = np.empty(resamples)
    difference = items.candidate - items.baseline
    if items.statistic == "spearman":
        assert items.gold is not None
        tie_groups = [_TieGroups(v) for v in (items.gold, items.baseline, items.candidate)]
    for start in range(0, resamples, _BLOCK):
        rows = min(_BLOCK, resamples - start)
        counts = _counts(rng, rows, items.n)
        if items.statistic == "mean":
            deltas[start : start + rows] = counts @ difference / items.n
            continue
        assert items.gold is not None
        if items.statistic == "spearman":
            gold, baseline, candidate = (groups.ranks(counts) for groups in tie_groups)
        else:
            gold, baseline, candidate = items.gold, items.baseline, items.candidate
        gold_moments = _weighted_moments(gold, counts, counts.sum(axis=1, keepdims=True))
        deltas[start : start + rows] = _weighted_correlation(
            gold, candidate, counts, gold_moments
        ) - _weighted_correlation(gold, baseline, counts, gold_moments)
    return deltas


def permutation_deltas(items: PairedItems, resamples: int, seed: int) -> np.ndarray:
    """Delta on each random swap of the two systems' scores, item by item."""
    rng = np.random.default_rng(seed)
    deltas = np.empty(resamples)
    difference = items.candidate - items.baseline
    if items.statistic != "mean":
        assert items.gold is not None
        # both systems' scores pooled: a swap picks, per item, which of its two scores is the "candidate"
        pooled = np.concatenate([items.baseline, items.candidate])
        gold = np.concatenate([items.gold, items.gold])
        if items.statistic == "spearman":
            pooled_groups = _TieGroups(pooled)
            gold = np.concatenate([scipy_stats.rankdata(items.gold)] * 2)  # every swap keeps all gold scores
    for start in range(0, resamples, _BLOCK):
        rows = min(_BLOCK, resamples - start)
        swap = rng.random((rows, items.n)) < 0.5
        if items.statistic == "mean":
            deltas[start : start + rows] = np.where(swap, -difference, difference).mean(axis=1)
            continue
        as_candidate = np.concatenate([swap, ~swap], axis=1).astype(np.float64)
        as_baseline = 1.0 - as_candidate
        if items.statistic == "spearman":
            candidate_scores = pooled_groups.ranks(as_candidate)
            baseline_scores = pooled_groups.ranks(as_baseline)
        else:
            candidate_scores = baseline_scores = pooled
        deltas[start : start + rows] = _weighted_correlation(gold, candidate_scores, as_candidate) - (
            _weighted_correlation(gold, baseline_scores, as_baseline)
        )
    return deltas


def _jackknife_pseudo_deltas(items: PairedItems, groups: int) -> np.ndarray:
    """Delete-a-group jackknife pseudo-values of the delta: an additive stand-in for a correlation's delta."""
    groups = max(2, min(groups, items.n))
    assignment = np.arange(items.n) % groups
    full = statistic_value(items, items.candidate) - statistic_value(items, items.baseline)
    pseudo = np.empty(groups)
    for group in range(groups):
        keep = assignment != group
        subset = PairedItems(
            items.statistic,
            items.baseline[keep],
            items.candidate[keep],
            None if items.gold is None else items.gold[keep],
        )
        left_out = statistic_value(subset, subset.candidate) - statistic_value(subset, subset.baseline)
        pseudo[group] = groups * full - (groups - 1) * left_out
    return pseudo


def _win_tie_loss(items: PairedItems, tolerance: float = 1e-12) -> tuple[int, int, int]:
    """Per item: the candidate's value is higher (mean); or its rank is closer to the gold rank (correlations)."""
    if items.statistic == "mean":
        better = items.candidate - items.baseline
    else:
        assert items.gold is not None
        gold_rank = scipy_stats.rankdata(items.gold)
        better = np.abs(scipy_stats.rankdata(items.baseline) - gold_rank) - np.abs(
            scipy_stats.rankdata(items.candidate) - gold_rank
        )
    return int((better > tolerance).sum()), int((np.abs(better) <= tolerance).sum()), int((better < -tolerance).sum())


def _pseudo_differences(items: PairedItems) -> np.ndarray:
    return items.candidate - items.baseline if items.statistic == "mean" else _jackknife_pseudo_deltas(items, 200)


def _ttest(cells: Sequence[PairedItems], alpha: float) -> tuple[float, float, float]:
    """p-value and interval of the mean over cells of per-cell mean differences (one cell: the paired t-test)."""
    parts = [_pseudo_differences(cell) for cell in cells]
    delta = float(np.mean([part.mean() for part in parts]))
    variance = sum(float(np.var(part, ddof=1)) / part.shape[0] for part in parts) / len(parts) ** 2
    dof = min(part.shape[0] for part in parts) - 1
    if variance == 0.0:
        return (1.0 if delta == 0.0 else 0.0), delta, delta
    error = float(np.sqrt(variance))
    p_value = float(2 * scipy_stats.t.sf(abs(delta) / error, df=dof))
    half = float(scipy_stats.t.ppf(1 - alpha / 2, df=dof)) * error
    return p_value, delta - half, delta + half


def paired_test(
    cells: PairedItems | Sequence[PairedItems],
    test: str = "bootstrap",
    *,
    alpha: float = 0.05,
    resamples: int = 10_000,
    seed: int = 0,
) -> PairedResult:
    """Delta of the statistic, its (1 - alpha) confidence interval, a two-sided p-value, and win/tie/loss.

    Several ``cells`` (a task's splits or language subsets) are scored as mteb scores the task: the plain mean of
    the per-cell statistics. Resampling is then stratified: each cell is resampled within itself.
    """
    cells = [cells] if isinstance(cells, PairedItems) else list(cells)
    if test not in TESTS:
        raise ValueError(f"unknown test '{test}' (known: {', '.join(TESTS)})")
    if not cells or any(cell.n < 2 for cell in cells):
        raise ValueError("a paired test needs at least two items in every cell")
    baseline = float(np.mean([statistic_value(cell, cell.baseline) for cell in cells]))
    candidate = float(np.mean([statistic_value(cell, cell.candidate) for cell in cells]))
    delta = candidate - baseline
    boot = np.mean([bootstrap_deltas(cell, resamples, seed + i) for i, cell in enumerate(cells)], axis=0)
    ci_low, ci_high = (float(v) for v in np.quantile(boot, [alpha / 2, 1 - alpha / 2]))
    if test == "bootstrap":
        extreme = np.abs(boot - delta) >= abs(delta) - 1e-15
        p_value = float((1 + extreme.sum()) / (resamples + 1))
    elif test == "permutation":
        permuted = np.mean([permutation_deltas(c, resamples, seed + 7919 + i) for i, c in enumerate(cells)], axis=0)
        p_value = float((1 + (np.abs(permuted) >= abs(delta) - 1e-15).sum()) / (resamples + 1))
    else:
        p_value, ci_low, ci_high = _ttest(cells, alpha)
    if delta == 0.0 and test != "ttest":
        p_value = 1.0  # no difference at all: every resample is "as extreme"
    counts = [_win_tie_loss(cell) for cell in cells]
    return PairedResult(
        test=test,
        n=sum(cell.n for cell in cells),
        baseline=baseline,
        candidate=candidate,
        delta=delta,
        ci_low=ci_low,
        ci_high=ci_high,
        confidence=1 - alpha,
        p_value=min(1.0, p_value),
        wins=sum(c[0] for c in counts),
        ties=sum(c[1] for c in counts),
        losses=sum(c[2] for c in counts),
    )


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (step-down, made monotone), in the input order."""
    count = len(p_values)
    order = sorted(range(count), key=lambda i: p_values[i])
    adjusted = [0.0] * count
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (count - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted
