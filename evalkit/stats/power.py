"""What a paired check can detect: the smallest drop found at 80% power, and the items a check needs for a drop.

Normal approximation for a paired comparison of a statistic: a true drop ``D`` is detected by a two-sided test at
level ``alpha`` with power ``1 - beta`` when ``D >= (z_{1-alpha/2} + z_{1-beta}) * SE``, where ``SE`` is the standard
error of the delta. ``evalkit diff`` uses the paired bootstrap by default; for a mean over items the bootstrap's
standard error of the mean delta is ``sd / sqrt(n)`` (up to ``n/(n-1)``), so the closed formula *is* the bootstrap
equivalent and is used for every test, without resampling. The SE is computed as the t-test computes it
(``evalkit.stats.paired``): per cell, the variance of the per-item differences over ``n`` — for a correlation
(STS Spearman) on delete-a-group jackknife pseudo-values of the delta — averaged over cells as mteb averages
their scores.

The alpha is Holm's strictest step, ``alpha / tasks``: the smallest p-value of a family must pass it, so a drop
this large is detected whatever the other tasks do (conservative for the rest).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats as scipy_stats

from evalkit.stats.paired import PairedItems, _jackknife_pseudo_deltas, _pseudo_differences

POWER = 0.8
ASSUMED_CORRELATION = 0.5  # between two models' per-item scores, when only one model's are known (plan)


def z_sum(alpha: float, power: float = POWER) -> float:
    """``z_{1-alpha/2} + z_{power}``: how many standard errors a drop must be to be found with that power."""
    return float(scipy_stats.norm.ppf(1 - alpha / 2) + scipy_stats.norm.ppf(power))


def delta_standard_error(cells: Sequence[PairedItems]) -> float:
    """Standard error of the task's delta (0-1 scale) from the paired per-item differences, cells averaged."""
    parts = [_pseudo_differences(cell) for cell in cells]
    variance = sum(float(np.var(part, ddof=1)) / part.shape[0] for part in parts) / len(parts) ** 2
    return math.sqrt(variance)


def detectable_drop(cells: Sequence[PairedItems], alpha: float, power: float = POWER) -> float:
    """The smallest true drop (0-1 scale) a paired check of these items finds at ``power`` (two-sided ``alpha``)."""
    return z_sum(alpha, power) * delta_standard_error(cells)


def _single_pseudo_values(cell: PairedItems) -> np.ndarray:
    """Per-item values whose mean is the baseline's statistic: the items themselves, or jackknife pseudo-values
    of a correlation (against constant scores, whose correlation is 0, so the delta is the statistic itself)."""
    if cell.statistic == "mean":
        return cell.baseline
    zero = PairedItems(cell.statistic, np.zeros_like(cell.baseline), cell.baseline, cell.gold)
    return _jackknife_pseudo_deltas(zero, 200)


def per_item_sd(cells: Sequence[PairedItems]) -> float:
    """The baseline's per-item standard deviation, pooled so that ``sd / sqrt(total items)`` is the SE of its score.

    A correlation has no per-item value: its jackknife SE is turned into the per-item SD it implies.
    """
    parts = [_single_pseudo_values(cell) for cell in cells]
    variance = sum(float(np.var(part, ddof=1)) / part.shape[0] for part in parts) / len(parts) ** 2
    total = sum(cell.n for cell in cells)
    return math.sqrt(variance * total)


def difference_sd(item_sd: float, correlation: float = ASSUMED_CORRELATION) -> float:
    """SD of paired differences from one system's per-item SD, assuming the other system has the same SD and the
    two correlate per item with ``correlation``: ``sqrt(2 (1 - rho)) * sd`` (at the default rho 0.5, ``sd``)."""
    return math.sqrt(2 * (1 - correlation)) * item_sd


def items_needed(difference_sd_value: float, drop: float, alpha: float, power: float = POWER) -> int:
    """How many paired items detect a true ``drop`` (0-1 scale) at ``power``: ``ceil(((z_a + z_b) sd / drop)^2)``,
    at least 2 (a paired test needs two)."""
    if not drop > 0:
        raise ValueError("the drop to detect must be > 0")
    return max(2, math.ceil((z_sum(alpha, power) * difference_sd_value / drop) ** 2))
