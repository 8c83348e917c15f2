"""Rank intervals by two resampling units, on synthetic models with known gaps (no files, no models).

The rates are the contract: over many seeds (new data and a new bootstrap seed each time), a pair with no true gap
is flagged separable at about the test's level (here: at most 10%) and a large gap nearly always (at least 90%).
Measured on these generators (80 seeds here; 400 others): zero gap 3.8% (5.0%) within tasks, 5.0% (6.0%) across 30
tasks — the percentile bootstrap over few tasks runs a little above 5% (its spread is the plug-in one, with normal
rather than t tails: about 7% over 20 tasks); large gap (0.05) 100%.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as scipy_stats

from evalkit.errors import DataError, EvalkitError
from evalkit.stats.rank_intervals import (
    UNITS,
    TaskItems,
    across_task_intervals,
    statistic_on_resamples,
    within_task_intervals,
)

SEEDS = range(80)


def _items(rng: np.random.Generator, shifts: dict[str, float], tasks: int = 4, n: int = 150) -> dict:
    """Per-query values: a difficulty shared by every model (so the pairing matters) plus a model's own noise."""
    data: dict[str, dict[str, TaskItems]] = {model: {} for model in shifts}
    for task in range(tasks):
        difficulty = rng.uniform(0.2, 0.8, n)
        for model, shift in shifts.items():
            values = difficulty + shift + rng.normal(0, 0.08, n)
            data[model][f"T{task}"] = TaskItems("mean", values, ids=[f"q{i}" for i in range(n)])
    return data


def _task_scores(rng: np.random.Generator, shifts: dict[str, float], tasks: int = 30) -> dict:
    difficulty = rng.uniform(0.3, 0.7, tasks)
    return {
        model: {f"T{t}": float(difficulty[t] + shift + rng.normal(0, 0.02)) for t in range(tasks)}
        for model, shift in shifts.items()
    }


def _pair(result, first: str, second: str):  # type: ignore[no-untyped-def]
    return next(p for p in result.pairs if {p.upper, p.lower} == {first, second})


def _rates(unit: str) -> tuple[float, float]:
    """Share of seeds where the zero-gap pair (a, b), and the large-gap pair (c above both), is separable."""
    zero = large = 0
    for seed in SEEDS:
        rng = np.random.default_rng(1000 + seed)
        shifts = {"a": 0.0, "b": 0.0, "c": 0.05}
        if unit == UNITS[0]:
            result = within_task_intervals(_items(rng, shifts), resamples=400, seed=seed)
        else:
            result = across_task_intervals(_task_scores(rng, shifts), resamples=400, seed=seed)
        assert result.models[0].model == "c"
        zero += _pair(result, "a", "b").separable
        large += result.pairs[0].separable
    return zero / len(SEEDS), large / len(SEEDS)


@pytest.mark.parametrize("unit", UNITS)
def test_a_zero_gap_is_rarely_separable_and_a_large_gap_nearly_always(unit: str) -> None:
    zero, large = _rates(unit)
    assert zero <= 0.10, f"{unit}: a zero gap flagged separable in {zero:.0%} of seeds"
    assert large >= 0.90, f"{unit}: a large gap separable in only {large:.0%} of seeds"


def test_the_unit_decides_a_small_gap_that_varies_across_tasks() -> None:
    """b is better by 0.01 on average, precisely measured in every task (500 queries each) but +0.04 on half the
    tasks and -0.02 on the others: within tasks (tasks fixed) that is a real gap; across tasks (tasks a sample) the
    task-to-task spread swamps it. This is the audit's point: the unit resampled decides the answer."""
    rng = np.random.default_rng(7)
    items: dict[str, dict[str, TaskItems]] = {"a": {}, "b": {}}
    for task in range(10):
        difficulty = rng.uniform(0.2, 0.8, 500)
        gap = 0.04 if task % 2 == 0 else -0.02
        items["a"][f"T{task}"] = TaskItems("mean", difficulty + rng.normal(0, 0.02, 500))
        items["b"][f"T{task}"] = TaskItems("mean", difficulty + gap + rng.normal(0, 0.02, 500))
    within = within_task_intervals(items, seed=3)
    scores = {model: {task: float(cell.values.mean()) for task, cell in row.items()} for model, row in items.items()}
    across = across_task_intervals(scores, seed=3)
    assert within.unit == "within tasks" and across.unit == "across tasks"
    for result in (within, across):
        assert [m.model for m in result.models] == ["b", "a"]
        assert result.models[0].score == pytest.approx(np.mean([np.mean(v) for v in scores["b"].values()]))
    assert within.pairs[0].separable and within.pairs[0].low > 0
    assert [(m.low, m.high) for m in within.models] == [(1, 1), (2, 2)]
    assert not across.pairs[0].separable and across.pairs[0].low < 0 < across.pairs[0].high
    assert [(m.low, m.high) for m in across.models] == [(1, 2), (1, 2)]


def test_spearman_is_recomputed_on_a_resample_as_scipy_computes_it() -> None:
    rng = np.random.default_rng(11)
    gold = np.round(rng.uniform(0, 5, 80), 1)  # tied gold scores, as STS has
    good = gold + rng.normal(0, 1, 80)
    tied = np.round(gold + rng.normal(0, 2, 80))  # tied predictions take the general path
    cell = [TaskItems("spearman", good, gold), TaskItems("spearman", tied, gold)]
    drawn = rng.integers(0, 80, (3, 80))  # three resamples drawn by hand, duplicates and all
    counts = np.stack([np.bincount(row, minlength=80) for row in drawn])
    got = statistic_on_resamples(cell, counts)
    for row, index in enumerate(drawn):
        expected = [scipy_stats.spearmanr(gold[index], values[index]).statistic for values in (good, tied)]
        assert got[row] == pytest.approx(expected, rel=1e-10)
    pearson = statistic_on_resamples([TaskItems("pearson", good, gold)], counts[:1])[0, 0]
    assert pearson == pytest.approx(scipy_stats.pearsonr(gold[drawn[0]], good[drawn[0]]).statistic, rel=1e-10)
    result = within_task_intervals({"good": {"STS": cell[0]}, "tied": {"STS": cell[1]}}, resamples=300)
    assert result.by_model()["good"].score == pytest.approx(scipy_stats.spearmanr(gold, good).statistic)
    assert result.models[0].model == "good" and result.pairs[0].separable


def test_a_task_of_several_cells_is_the_mean_of_its_cells() -> None:
    rng = np.random.default_rng(4)
    cells = {m: [TaskItems("mean", rng.random(30) + s), TaskItems("mean", rng.random(50) + s)] for m, s in
             (("x", 0.0), ("y", 0.3))}  # fmt: skip
    result = within_task_intervals({m: {"T": c} for m, c in cells.items()}, resamples=200)
    assert result.by_model()["y"].score == pytest.approx(np.mean([c.values.mean() for c in cells["y"]]))


def test_same_seed_same_intervals_and_other_models_do_not_move_the_resamples() -> None:
    rng = np.random.default_rng(5)
    items = _items(rng, {"a": 0.0, "b": 0.004, "c": 0.008})
    first = within_task_intervals(items, resamples=300, seed=42)
    assert first == within_task_intervals(items, resamples=300, seed=42)
    assert first != within_task_intervals(items, resamples=300, seed=43)
    far_below = {
        **items,
        "z": {task: TaskItems("mean", cell.values - 1.0, ids=cell.ids) for task, cell in items["a"].items()},
    }
    widened = within_task_intervals(far_below, resamples=300, seed=42)
    for before, after in zip(first.pairs, widened.pairs, strict=False):  # the same resamples for a, b and c
        assert (after.upper, after.lower, after.separable) == (before.upper, before.lower, before.separable)
        assert (after.low, after.high) == pytest.approx((before.low, before.high), abs=1e-12)
    scores = _task_scores(rng, {"a": 0.0, "b": 0.01})
    assert across_task_intervals(scores, seed=1) == across_task_intervals(scores, seed=1)


def test_equal_models_share_the_best_rank_and_are_never_separable() -> None:
    rng = np.random.default_rng(6)
    items = _items(rng, {"a": 0.0, "low": -0.2})
    items["twin"] = dict(items["a"])
    result = within_task_intervals(items, resamples=200)
    ranks = {m.model: (m.rank, m.low, m.high) for m in result.models}
    assert ranks == {"a": (1, 1, 1), "twin": (1, 1, 1), "low": (3, 3, 3)}
    assert [p.separable for p in result.pairs] == [False, True]


def test_models_missing_a_task_are_left_out_with_the_reason() -> None:
    rng = np.random.default_rng(8)
    items = _items(rng, {"a": 0.0, "b": 0.1, "partial": 0.2})
    del items["partial"]["T2"]
    within = within_task_intervals(items, resamples=100)
    assert [m.model for m in within.models] == ["b", "a"] and "T2" in within.notes["partial"]
    scores = _task_scores(rng, {"a": 0.0, "b": 0.1, "nan": 0.2, "none": 0.3})
    scores["nan"]["T3"], scores["none"]["T4"] = float("nan"), None
    across = across_task_intervals(scores, resamples=100)
    assert {m.model for m in across.models} == {"a", "b"} and set(across.notes) == {"nan", "none"}
    assert "T3" in across.notes["nan"] and [m.rank for m in across.models] == [1, 2]


def _one_line(error: pytest.ExceptionInfo[BaseException]) -> str:
    message = str(error.value)
    assert "\n" not in message and message
    return message


@pytest.mark.parametrize(
    ("build", "words"),
    [
        (lambda: {"a": {"T": TaskItems("mean", [0.1, 0.2], ids=["q1", "q2"])},
                  "b": {"T": TaskItems("mean", [0.1, 0.2], ids=["q1", "q3"])}}, "item ids differ"),
        (lambda: {"a": {"T": TaskItems("mean", [0.1, 0.2])}, "b": {"T": TaskItems("mean", [0.1, 0.2, 0.3])}},
         "not aligned"),
        (lambda: {"a": {"T": TaskItems("spearman", [0.1, 0.2, 0.3], [1, 2, 3])},
                  "b": {"T": TaskItems("spearman", [0.1, 0.2, 0.3], [1, 2, 4])}}, "gold"),
        (lambda: {"a": {"T": []}, "b": {"T": []}}, "no cells"),
        (lambda: {"a": {"T": TaskItems("mean", [])}}, "at least two items"),
        (lambda: {"a": {"T": TaskItems("mean", [0.1, float("nan")])}}, "finite"),
        (lambda: {"a": {"T": TaskItems("median", [0.1, 0.2])}}, "unknown statistic"),
        (lambda: {"a": {"T": TaskItems("spearman", [0.1, 0.2])}}, "gold"),
        (lambda: {"a": {}}, "no tasks"),
    ],
)  # fmt: skip
def test_bad_items_raise_one_line_data_errors(build, words: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DataError) as error:
        within_task_intervals(build(), resamples=10)
    assert words in _one_line(error)


def test_bad_settings_and_a_single_task_are_refused() -> None:
    scores = {"a": {"T1": 0.5, "T2": 0.6}, "b": {"T1": 0.4, "T2": 0.7}}
    with pytest.raises(DataError) as error:
        across_task_intervals({"a": {"T1": 0.5}, "b": {"T1": 0.4}})
    assert "at least two tasks" in _one_line(error)
    for settings in ({"resamples": 0}, {"resamples": 2.5}, {"level": 1.0}, {"level": 0}):
        with pytest.raises(EvalkitError) as error:
            across_task_intervals(scores, **settings)  # type: ignore[arg-type]
        assert error.value.field in {"resamples", "level"} and _one_line(error)
