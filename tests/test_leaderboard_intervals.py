"""``evalkit leaderboard --rank-intervals``: each model's rank interval by two units, on run folders with known gaps.

The folders are written as ``evalkit run`` writes them (tests/run_folders.py): a retrieval task (per-query nDCG@10)
and an STS task (per-pair cosine and gold), so within tasks resamples a mean and a Spearman correlation.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from run_folders import write_run

from evalkit.cli import main
from evalkit.reports.api import leaderboard
from evalkit.reports.leaderboard_render import render_board

ITEMS = 150


def _runs(root: Path, seed: int, *, gap: float = 0.15) -> Path:
    """Three models: ``best`` a large gap above two models whose true scores are equal (``b``, ``c``)."""
    rng = np.random.default_rng(seed)
    ndcg = 0.3 + 0.4 * rng.random(ITEMS)
    gold = 5 * rng.random(ITEMS)

    def sts(noise: float) -> tuple[np.ndarray, np.ndarray]:
        return gold, gold + rng.normal(0, noise, ITEMS)

    write_run(root, model="org/best", retrieval=ndcg + gap, sts=sts(0.5))
    write_run(root, model="org/b", retrieval=ndcg + rng.normal(0, 0.05, ITEMS), sts=sts(1.5))
    write_run(root, model="org/c", retrieval=ndcg + rng.normal(0, 0.05, ITEMS), sts=sts(1.5))
    return root


def _by_model(board) -> dict:
    return {row.model: row for row in board.rows}


def test_a_large_gap_is_separable_within_tasks_and_the_intervals_are_deterministic(tmp_path: Path) -> None:
    root = _runs(tmp_path, 0)
    board = leaderboard(root, rank_intervals=True, resamples=400, seed=7)
    rows = _by_model(board)
    best = rows["org/best"]
    assert (best.within.low, best.within.high, best.within.separable_below) == (1, 1, True)
    assert {rows["org/b"].within.low, rows["org/c"].within.low} == {2}  # a zero gap: both can be second
    assert {rows["org/b"].within.high, rows["org/c"].within.high} == {3}
    assert not any(row.published for row in board.rows)
    assert best.across is not None and best.across.rank == 1  # two tasks: across tasks has little to say
    again = leaderboard(root, rank_intervals=True, resamples=400, seed=7)
    assert [(r.within, r.across) for r in again.rows] == [(r.within, r.across) for r in board.rows]
    within_score = {entry.model: entry.score for entry in board.intervals.within.models}
    assert within_score[best.name] == pytest.approx(best.mean, abs=1e-9)  # resampled from the items it scored


def test_published_folders_get_the_across_task_interval_only_and_the_table_says_so(tmp_path: Path) -> None:
    root = _runs(tmp_path / "runs", 1)
    published = tmp_path / "published"
    shutil.copytree(root / "org__c", published / "org__published")
    for side in published.rglob("evalkit"):
        shutil.rmtree(side)  # a published result file: TaskResult JSON only
    board = leaderboard([root, published], rank_intervals=True, resamples=200)
    row = next(r for r in board.rows if r.published)
    assert row.within is None and row.across is not None
    assert sum(r.published for r in board.rows) == 1
    assert all(r.within is not None for r in board.rows if not r.published)
    text = render_board(board, "md")
    assert "Rank within tasks (95%)" in text and "Rank across tasks (95%)" in text
    assert "† published result file: no per-item scores, so across tasks only." in text
    assert f"{row.name} †" in text.replace("\\", "")


def test_the_dataframe_has_both_units_and_the_cli_repeats_itself(tmp_path: Path, capsys) -> None:
    root = _runs(tmp_path, 2)
    frame = leaderboard(root, rank_intervals=True, resamples=200, seed=3).to_dataframe()
    for unit in ("within tasks", "across tasks"):
        assert str(frame[f"Rank {unit} (low)"].dtype) == "Int64"
        assert str(frame[f"Separable {unit}"].dtype) == "boolean"
        assert (frame[f"Rank {unit} (low)"] <= frame[f"Rank {unit} (high)"]).all()
    assert bool(frame.loc[frame["Model"] == "org/best", "Separable within tasks"].item())
    argv = ["leaderboard", str(root), "--rank-intervals", "--resamples", "200", "--seed", "3", "--format", "csv"]
    outputs = []
    for _ in range(2):
        assert main(argv) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1] and "Rank within tasks (low)" in outputs[0]
    assert main([*argv[:-2], "--resamples", "0"]) == 2
    assert "--resamples" in capsys.readouterr().err


@pytest.mark.slow
def test_separable_at_the_stated_rates_over_repeated_data(tmp_path: Path) -> None:
    """Over 10 draws of the data: the large gap is separable within tasks every time, the zero gap rarely."""
    large, zero = 0, 0
    for seed in range(10):
        board = leaderboard(_runs(tmp_path / str(seed), seed), rank_intervals=True, resamples=300, seed=seed)
        pairs = {(p.upper, p.lower): p.separable for p in board.intervals.within.pairs}
        upper = board.intervals.within.models
        large += pairs[(upper[0].model, upper[1].model)]
        zero += pairs[(upper[1].model, upper[2].model)]
    assert large == 10
    assert zero <= 2  # 5% expected
