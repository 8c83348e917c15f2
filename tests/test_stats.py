"""Paired tests and Holm's correction, checked against scipy and exact enumeration."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats as scipy_stats

from evalkit.stats.paired import PairedItems, holm, paired_test, statistic_value


def test_ttest_on_a_mean_equals_scipy_ttest_rel() -> None:
    rng = np.random.default_rng(1)
    base = rng.random(200)
    cand = base + rng.normal(0.02, 0.1, 200)
    result = paired_test(PairedItems("mean", base, cand), "ttest")
    expected = scipy_stats.ttest_rel(cand, base)
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-9)
    interval = expected.confidence_interval(0.95)
    assert (result.ci_low, result.ci_high) == pytest.approx((interval.low, interval.high), rel=1e-9)
    assert result.delta == pytest.approx(cand.mean() - base.mean())


def test_permutation_p_value_matches_exact_enumeration() -> None:
    base = np.array([0.1, 0.5, 0.3, 0.9, 0.4, 0.2, 0.6, 0.7, 0.3, 0.8, 0.55, 0.45])
    cand = base + np.array([0.1, 0.2, -0.05, 0.15, 0.0, 0.12, 0.3, -0.1, 0.2, 0.05, 0.1, 0.07])
    diff = cand - base
    observed = abs(diff.mean())
    flips = np.array(list(itertools.product([1, -1], repeat=len(diff))))
    exact = np.mean(np.abs((flips * diff).mean(axis=1)) >= observed - 1e-15)
    result = paired_test(PairedItems("mean", base, cand), "permutation", resamples=20_000)
    assert result.p_value == pytest.approx(exact, abs=0.006)


def test_bootstrap_separates_a_real_shift_from_noise() -> None:
    rng = np.random.default_rng(2)
    base = rng.random(300)
    shifted = paired_test(PairedItems("mean", base, base + 0.05 + rng.normal(0, 0.05, 300)))
    assert shifted.p_value < 0.001 and shifted.ci_low > 0
    same = paired_test(PairedItems("mean", base, base.copy()))
    assert same.p_value == 1.0 and same.delta == 0.0 and (same.wins, same.ties, same.losses) == (0, 300, 0)
    noise = paired_test(PairedItems("mean", base, rng.permutation(base)))
    assert noise.p_value > 0.05 and noise.ci_low < 0 < noise.ci_high


def test_correlation_statistics_equal_scipy_and_are_tested_on_the_correlation() -> None:
    rng = np.random.default_rng(3)
    gold = rng.random(400) * 5
    good = gold + rng.normal(0, 0.8, 400)
    worse = gold + rng.normal(0, 2.5, 400)
    items = PairedItems("spearman", good, worse, gold)
    assert statistic_value(items, good) == pytest.approx(scipy_stats.spearmanr(gold, good).statistic, rel=1e-12)
    pearson = PairedItems("pearson", good, worse, gold)
    assert statistic_value(pearson, worse) == pytest.approx(scipy_stats.pearsonr(gold, worse).statistic, rel=1e-12)
    for test in ("bootstrap", "permutation", "ttest"):
        result = paired_test(items, test, resamples=2000)
        assert result.delta < 0 and result.p_value < 0.01, test
        assert result.ci_high < 0, test
        assert result.losses > result.wins


def test_stratified_cells_score_as_the_mean_of_cells() -> None:
    rng = np.random.default_rng(4)
    cells = [PairedItems("mean", rng.random(50), rng.random(50)), PairedItems("mean", rng.random(500), rng.random(500))]
    result = paired_test(cells, "ttest")
    expected = np.mean([c.candidate.mean() - c.baseline.mean() for c in cells])
    assert result.delta == pytest.approx(expected)
    assert result.n == 550


def test_resampling_is_reproducible() -> None:
    rng = np.random.default_rng(5)
    items = PairedItems("mean", rng.random(100), rng.random(100))
    assert paired_test(items, resamples=500) == paired_test(items, resamples=500)


def test_holm_adjusts_step_down_and_monotone() -> None:
    # worked example: p = (0.01, 0.04, 0.03, 0.005) → sorted 0.005·4, 0.01·3, 0.03·2, 0.04·1 → monotone max
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert holm([]) == []


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="aligned"):
        PairedItems("mean", np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="gold"):
        PairedItems("spearman", np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match="unknown test"):
        paired_test(PairedItems("mean", np.zeros(3), np.zeros(3)), "wilcoxon")


def test_count_based_ranks_equal_spearman_on_the_materialised_resample() -> None:
    from evalkit.stats.paired import _TieGroups, _weighted_correlation

    rng = np.random.default_rng(6)
    gold = np.round(rng.random(60) * 5, 1)  # ties on purpose
    predicted = np.round(gold + rng.normal(0, 1, 60), 2)
    counts = rng.multinomial(60, np.full(60, 1 / 60), size=5).astype(float)
    fast = _weighted_correlation(_TieGroups(gold).ranks(counts), _TieGroups(predicted).ranks(counts), counts)
    for row, weights in enumerate(counts):
        index = np.repeat(np.arange(60), weights.astype(int))
        assert fast[row] == pytest.approx(scipy_stats.spearmanr(gold[index], predicted[index]).statistic, abs=1e-12)


def test_spearman_permutation_p_value_matches_a_direct_computation() -> None:
    rng = np.random.default_rng(8)
    gold = rng.random(40)
    base = gold + rng.normal(0, 0.3, 40)
    cand = gold + rng.normal(0, 0.6, 40)
    observed = abs(scipy_stats.spearmanr(gold, cand).statistic - scipy_stats.spearmanr(gold, base).statistic)
    direct = []
    for _ in range(3000):
        swap = rng.random(40) < 0.5
        a, b = np.where(swap, cand, base), np.where(swap, base, cand)
        direct.append(abs(scipy_stats.spearmanr(gold, b).statistic - scipy_stats.spearmanr(gold, a).statistic))
    expected = np.mean(np.array(direct) >= observed - 1e-15)
    result = paired_test(PairedItems("spearman", base, cand, gold), "permutation", resamples=20_000)
    assert result.p_value == pytest.approx(expected, abs=0.02)
