"""Quick-subset fidelity (``subset_fidelity`` and ``evalkit subset report``) on synthetic runs with known orderings.

Each run is written as ``evalkit run`` writes it (tests/run_folders.py), once on the full task and once on a subset
(its run records carry ``subset``). Per-item scores are a shared base plus a per-run offset, so every ordering,
shift and diff verdict below follows from the offsets alone.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from evalkit.errors import EvalkitError
from evalkit.reports.diff import DiffSettings
from evalkit.subsets.fidelity import IMPROVEMENT, NO_CHANGE, REGRESSION, subset_fidelity
from tests.run_folders import write_run

FULL_ITEMS, SUBSET_ITEMS = 40, 20
SETTINGS = DiffSettings(resamples=2000, max_drop=1.0)


def _items(count: int, offset: float, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """Per-item nDCG@10 in (0.3, 0.7) plus ``offset``; ``noise``: zero-mean per-item jitter (no true change)."""
    base = np.linspace(0.3, 0.7, count)
    jitter = np.random.default_rng(seed).normal(0.0, noise, count) if noise else np.zeros(count)
    return base + offset + (jitter - jitter.mean())


def _mark_subset(root: Path, name: str) -> None:
    for record in root.rglob("*.run.json"):
        data = json.loads(record.read_text())
        record.write_text(json.dumps({**data, "subset": name}))


def _member(root: Path, label: str, full: np.ndarray, subset: np.ndarray) -> tuple[str, Path, Path]:
    full_dir, subset_dir = root / label / "full", root / label / "subset"
    write_run(full_dir, retrieval=full)
    write_run(subset_dir, retrieval=subset, corpus_sha="bbb")
    _mark_subset(subset_dir, "SciFact-quick")
    return label, full_dir, subset_dir


def _panel(root: Path, full_offsets: dict[str, float], subset_offsets: dict[str, float]) -> list:
    return [
        _member(root, label, _items(FULL_ITEMS, full_offsets[label]), _items(SUBSET_ITEMS, subset_offsets[label]))
        for label in full_offsets
    ]


def test_identical_orderings_give_tau_one_and_the_exact_shift(tmp_path: Path) -> None:
    full = {"base": 0.0, "b": -0.02, "c": 0.03, "d": -0.05}
    subset = {label: offset + 0.01 for label, offset in full.items()}  # every run 1 point higher on the subset
    report = subset_fidelity(_panel(tmp_path, full, subset), baseline="base", settings=SETTINGS)
    (row,) = report.tasks
    assert (row.task, row.runs) == ("SciFact", 4)
    assert row.kendall == pytest.approx(1.0) and row.spearman == pytest.approx(1.0)
    assert row.mean_abs_shift == pytest.approx(0.01) and row.max_abs_shift == pytest.approx(0.01)
    assert (row.verdicts, row.agreements, row.disagreements) == (3, 3, ())
    verdicts = {s.label: (s.full_verdict, s.subset_verdict) for s in row.scores}
    assert verdicts == {
        "base": (None, None),
        "b": (REGRESSION, REGRESSION),  # -2 points, every query lower: significant, beyond max_drop 1
        "c": (IMPROVEMENT, IMPROVEMENT),
        "d": (REGRESSION, REGRESSION),
    }
    assert report.pooled.kendall == pytest.approx(1.0) and report.min_kendall == pytest.approx(1.0)


def test_a_swap_of_two_runs_gives_the_hand_computed_tau(tmp_path: Path) -> None:
    full = {"base": 0.0, "b": -0.01, "c": -0.02, "d": -0.03}
    subset = {"base": 0.0, "b": -0.01, "c": -0.03, "d": -0.02}  # c and d swapped
    report = subset_fidelity(_panel(tmp_path, full, subset), baseline="base", settings=SETTINGS)
    (row,) = report.tasks
    # 4 runs: 6 pairs, one discordant (c, d), no ties: tau-b = (5 - 1) / 6. Spearman: d^2 = 1 + 1 over n(n^2-1) = 60.
    assert row.kendall == pytest.approx(4 / 6)
    assert row.spearman == pytest.approx(1 - 6 * 2 / 60)
    assert row.mean_abs_shift == pytest.approx(0.005)  # |shift| 0, 0, 0.01, 0.01
    assert row.max_abs_shift == pytest.approx(0.01)


def test_a_planted_regression_is_flagged_on_both_and_noise_on_neither(tmp_path: Path) -> None:
    panel = [
        _member(tmp_path, "base", _items(FULL_ITEMS, 0.0), _items(SUBSET_ITEMS, 0.0)),
        _member(tmp_path, "cls", _items(FULL_ITEMS, -0.05), _items(SUBSET_ITEMS, -0.05)),
        _member(tmp_path, "noise", _items(FULL_ITEMS, 0.0, 0.05, 1), _items(SUBSET_ITEMS, 0.0, 0.05, 2)),
    ]
    report = subset_fidelity(panel, baseline="base", settings=SETTINGS)
    scores = {s.label: s for s in report.tasks[0].scores}
    assert (scores["cls"].full_verdict, scores["cls"].subset_verdict) == (REGRESSION, REGRESSION)
    assert (scores["noise"].full_verdict, scores["noise"].subset_verdict) == (NO_CHANGE, NO_CHANGE)
    assert report.pooled.agreements == report.pooled.verdicts == 2


def test_a_regression_the_subset_misses_is_listed(tmp_path: Path) -> None:
    full = {"base": 0.0, "b": -0.03, "c": 0.02}
    subset = {"base": 0.0, "b": 0.0, "c": 0.02}
    report = subset_fidelity(_panel(tmp_path, full, subset), baseline="base", settings=SETTINGS)
    assert report.pooled.disagreements == (f"SciFact: b: {REGRESSION} on the full task, {NO_CHANGE} on the subset",)
    markdown = report.to_markdown()
    assert "| **all tasks** |" in markdown and "| b | 47.00 | 50.00 | +3.00 | regression |" in markdown
    data = report.to_dict()
    assert data["pooled"]["agreements"] == 1 and data["tasks"][0]["scores"][1]["full_verdict"] == REGRESSION
    json.dumps(data)  # plain values only


def test_a_task_on_one_side_only_is_listed_not_measured(tmp_path: Path) -> None:
    gold = np.linspace(0, 5, 30)
    panel = []
    for label, shift in (("base", 0.0), ("b", 0.3)):
        full_dir, subset_dir = tmp_path / label / "full", tmp_path / label / "subset"
        write_run(full_dir, retrieval=_items(FULL_ITEMS, -shift / 10), sts=(gold, gold + np.sin(gold * (3 + shift))))
        write_run(subset_dir, retrieval=_items(SUBSET_ITEMS, -shift / 10), corpus_sha="bbb")
        _mark_subset(subset_dir, "quick")
        panel.append((label, full_dir, subset_dir))
    report = subset_fidelity(panel, baseline="base", settings=SETTINGS)
    assert [t.task for t in report.tasks] == ["SciFact"]
    assert report.not_compared == ("base: STSBenchmark (full only)", "b: STSBenchmark (full only)")
    assert math.isfinite(report.tasks[0].kendall)  # two runs: tau is +1 or -1


def test_a_mislabelled_panel_is_refused(tmp_path: Path) -> None:
    panel = _panel(tmp_path, {"base": 0.0, "b": -0.01}, {"base": 0.0, "b": -0.01})
    with pytest.raises(EvalkitError, match="not a label"):
        subset_fidelity(panel, baseline="nobody")
    with pytest.raises(EvalkitError, match="given twice"):
        subset_fidelity([*panel, panel[1]], baseline="base")
    swapped = [panel[0], ("b", panel[1][2], panel[1][1])]  # full and subset folders given the wrong way round
    with pytest.raises(EvalkitError, match="on a subset"):
        subset_fidelity(swapped, baseline="base")
    with pytest.raises(EvalkitError, match="at least one other"):
        subset_fidelity(panel[:1], baseline="base")


def _cli(argv: list[str]) -> int:
    from evalkit.cli import main

    return main(argv)


def test_cli_reports_and_writes_markdown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    panel = _panel(tmp_path, {"base": 0.0, "<b>|x": -0.02}, {"base": 0.0, "<b>|x": -0.02})
    argv = ["subset", "report", "--baseline", "base", "--resamples", "500", "--markdown", str(tmp_path / "f.md")]
    for label, full, subset in panel:
        argv += ["--run", label, str(full), str(subset)]
    assert _cli(argv) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[3].split()[:4] == ["SciFact", "2", "1.000", "1.000"]
    markdown = (tmp_path / "f.md").read_text()
    assert "<b>|x" not in markdown  # a label cannot open a tag or a table cell


@pytest.mark.parametrize("problem", ["missing", "hostile", "twice", "max_drop"])
def test_cli_bad_input_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], problem: str) -> None:
    panel = _panel(tmp_path, {"base": 0.0, "b": -0.01}, {"base": 0.0, "b": -0.01})
    runs = [[label, str(full), str(subset)] for label, full, subset in panel]
    options = ["--resamples", "500"]
    if problem == "missing":
        runs[1][2] = str(tmp_path / "nowhere")
    elif problem == "hostile":  # a results file that is not JSON
        next((tmp_path / "b" / "subset").rglob("SciFact.json")).write_text("{not json")
    elif problem == "twice":
        runs[1][0] = "base"
    else:
        options = ["--max-drop", "nan"]
    argv = ["subset", "report", "--baseline", "base", *options, "--markdown", str(tmp_path / "f.md")]
    for run in runs:
        argv += ["--run", *run]
    assert _cli(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1, captured.err
    assert captured.err.startswith("evalkit: error: ")
    assert not (tmp_path / "f.md").exists()


def test_rounding_noise_is_a_tie_not_an_order(tmp_path: Path) -> None:
    full = {"base": 0.0, "same": 0.0, "b": -0.02}
    subset = {"base": 0.0, "same": 4e-7, "b": -0.02}  # "same" above base on the subset only by float noise
    report = subset_fidelity(_panel(tmp_path, full, subset), baseline="base", settings=SETTINGS)
    assert report.tasks[0].kendall == pytest.approx(1.0)


def test_runtime_differs_freely_in_fp32_but_not_in_bf16(tmp_path: Path) -> None:
    """fp32 runtimes agree to ~1e-6 (one model); bf16 kernels of torch and OpenVINO differ by ~3e-3 (not one)."""
    from evalkit.results.folders import Run
    from evalkit.subsets.fidelity import PanelError, _check_sides

    def run(precision: str, runtime: str) -> Run:
        return Run(tmp_path, "m", "r", {"precision": precision, "runtime": runtime})

    _check_sides("fp32", run("fp32", "torch"), run("fp32", "onnx"))
    with pytest.raises(PanelError, match="differ in settings \\(runtime\\)"):
        _check_sides("bf16", run("bf16", "torch"), run("bf16", "openvino"))
