"""Fidelity over the pairs of runs the full task separates (``evalkit.subsets.separable``), on synthetic runs.

Runs are written as in tests/test_subset_fidelity.py: per-item scores are a shared base plus a per-run offset, so a
pair whose offsets differ is separated by ``diff``'s paired test (every item moves alike), and a pair that differs
only by zero-mean jitter is not; which pairs are separable, and their order on the subset, follow from the offsets.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from evalkit.reports.diff import DiffSettings
from evalkit.subsets import separable
from evalkit.subsets.fidelity import FidelityReport, subset_fidelity
from evalkit.subsets.separable import PairOrder, SeparableSummary, pooled_summary
from tests.test_subset_fidelity import FULL_ITEMS, SUBSET_ITEMS, _items, _member, _panel

SETTINGS = DiffSettings(resamples=500)


def _swapped(tmp_path: Path) -> FidelityReport:
    full = {"base": 0.0, "a": -0.03, "b": -0.06}
    subset = {"base": 0.0, "a": -0.06, "b": -0.03}  # a and b swapped on the subset
    return subset_fidelity(_panel(tmp_path, full, subset), baseline="base", settings=SETTINGS)


def test_a_separated_pair_the_subset_swaps_is_reversed(tmp_path: Path) -> None:
    report = _swapped(tmp_path)
    summary = report.tasks[0].separable
    assert summary is not None
    assert (summary.pairs, summary.separable, summary.kept, summary.reversed, summary.tied) == (3, 3, 2, 1, 0)
    assert summary.tau == pytest.approx(1 / 3)
    (swap,) = summary.changed
    assert (swap.task, swap.higher, swap.lower, swap.order) == ("SciFact", "a", "b", "reversed")
    assert swap.full_delta == pytest.approx(0.03) and swap.subset_delta == pytest.approx(-0.03)
    assert swap.p_adjusted < SETTINGS.alpha
    assert report.min_separable_tau == pytest.approx(1 / 3)


def test_a_pair_within_noise_is_not_separable(tmp_path: Path) -> None:
    panel = [
        _member(tmp_path, "base", _items(FULL_ITEMS, 0.0), _items(SUBSET_ITEMS, 0.0)),
        _member(tmp_path, "noise", _items(FULL_ITEMS, 0.0, 0.05, 1), _items(SUBSET_ITEMS, 0.001, 0.05, 2)),
        _member(tmp_path, "worse", _items(FULL_ITEMS, -0.04), _items(SUBSET_ITEMS, -0.04)),
    ]
    summary = subset_fidelity(panel, baseline="base", settings=SETTINGS).tasks[0].separable
    assert summary is not None and (summary.pairs, summary.separable, summary.kept) == (3, 2, 2)
    assert {(o.higher, o.lower) for o in summary.orders} == {("base", "worse"), ("noise", "worse")}
    assert summary.tau == pytest.approx(1.0)  # base vs noise swaps on the subset: not an order the full task knows


def test_tau_counts_ties_as_neither_kept_nor_reversed() -> None:
    orders = [
        PairOrder("T", "a", "b", 0.02, 0.01, 0.001),
        PairOrder("T", "a", "c", 0.03, 4e-7, 0.001),  # within TIE_WITHIN: rounding, a tie
        PairOrder("T", "b", "c", 0.01, -0.02, 0.01),
    ]
    assert [o.order for o in orders] == ["kept", "tied", "reversed"]
    summary = separable._summary("T", 6, orders)
    assert (summary.separable, summary.kept, summary.reversed, summary.tied) == (3, 1, 1, 1)
    assert summary.tau == pytest.approx((1 - 1) / 3)
    assert math.isnan(SeparableSummary("T", 3).tau)


def test_the_pooled_row_sums_counts_over_tasks(tmp_path: Path) -> None:
    one = SeparableSummary("A", 3, (PairOrder("A", "x", "y", 0.1, 0.1, 0.01),) * 2)
    two = SeparableSummary("B", 6, (PairOrder("B", "x", "z", 0.1, -0.1, 0.01),))
    pooled = pooled_summary([one, two])
    assert (pooled.task, pooled.pairs, pooled.separable, pooled.kept, pooled.reversed) == ("all tasks", 9, 3, 2, 1)
    assert pooled.tau == pytest.approx(1 / 3) and pooled.changed == two.orders
    report = _swapped(tmp_path)
    assert report.pooled.separable == pooled_summary([report.tasks[0].separable])


def test_json_round_trip_and_markdown_list_the_reversed_pair(tmp_path: Path) -> None:
    report = _swapped(tmp_path)
    data = json.loads(json.dumps(report.to_dict()))
    assert data == report.to_dict()
    row = data["tasks"][0]["separable"]
    assert {k: row[k] for k in ("pairs", "separable", "kept", "reversed", "tied")} == {
        "pairs": 3, "separable": 3, "kept": 2, "reversed": 1, "tied": 0,
    }  # fmt: skip
    assert row["tau"] == pytest.approx(1 / 3) and data["min_separable_tau"] == pytest.approx(1 / 3)
    (changed,) = row["changed"]
    assert (changed["higher"], changed["lower"], changed["order"]) == ("a", "b", "reversed")
    assert changed["full_delta"] == pytest.approx(0.03) and changed["subset_delta"] == pytest.approx(-0.03)
    assert data["pooled"]["separable"]["reversed"] == 1
    markdown = report.to_markdown()
    assert "| 3/3 | 2/3, 1 reversed | 0.333 |" in markdown
    assert "| a | b | +3.00 | -3.00 |" in markdown


def test_the_baseline_verdicts_are_the_same_with_and_without_pairs(tmp_path: Path) -> None:
    panel = _panel(tmp_path, {"base": 0.0, "a": -0.03, "b": 0.02}, {"base": 0.0, "a": 0.0, "b": 0.02})
    with_pairs = subset_fidelity(panel, baseline="base", settings=SETTINGS)
    without = subset_fidelity(panel, baseline="base", settings=SETTINGS, pairs=False)
    assert with_pairs.tasks[0].scores == without.tasks[0].scores  # the shared full-task diffs change no verdict
    assert without.tasks[0].separable is None and without.pooled.separable is None
    assert math.isnan(without.min_separable_tau) and without.to_dict()["tasks"][0]["separable"] is None


def test_cli_no_pairs_skips_the_pairwise_tests(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from evalkit.cli import main

    panel = _panel(tmp_path, {"base": 0.0, "a": -0.03, "b": -0.06}, {"base": 0.0, "a": -0.06, "b": -0.03})
    argv = ["subset", "report", "--baseline", "base", "--resamples", "500", "--markdown", str(tmp_path / "f.md")]
    for label, full, subset in panel:
        argv += ["--run", label, str(full), str(subset)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "separable pairs" in out and "order lost: SciFact: a over b reversed on the subset" in out
    assert "worst task's tau over separable pairs: 0.333" in out

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("pair_diffs called with --no-pairs")

    monkeypatch.setattr(separable, "pair_diffs", refuse)
    assert main([*argv, "--no-pairs"]) == 0
    out = capsys.readouterr().out
    assert "separable" not in out and out.splitlines()[3].split()[:4] == ["SciFact", "3", "0.500", "0.333"]
    assert "separable" not in (tmp_path / "f.md").read_text()
