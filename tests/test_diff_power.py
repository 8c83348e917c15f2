"""Power in ``evalkit diff`` and ``evalkit plan``: what a check can detect, and how many items it needs."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from run_folders import write_run
from scipy import stats as scipy_stats

from evalkit.cli import main
from evalkit.reports.api import diff
from evalkit.reports.plan import plan_check


def _standard(n: int, seed: int) -> np.ndarray:
    """n values with mean 0 and sample SD exactly 1."""
    values = np.random.default_rng(seed).normal(size=n)
    return (values - values.mean()) / values.std(ddof=1)


def _pair(tmp_path: Path, n: int, sd: float, shift: float = 0.0, seed: int = 0) -> tuple[Path, Path]:
    """Baseline and candidate runs of SciFact whose per-query differences have mean ``-shift`` and SD ``sd``."""
    baseline = 0.5 + 0.1 * _standard(n, seed)
    candidate = baseline - shift + sd * _standard(n, seed + 1)
    return (
        write_run(tmp_path / f"base{n}", retrieval=baseline),
        write_run(tmp_path / f"cand{n}", model="org/cand", retrieval=candidate),
    )


def _expected(sd: float, n: int, alpha: float = 0.05) -> float:
    return float((scipy_stats.norm.ppf(1 - alpha / 2) + scipy_stats.norm.ppf(0.8)) * sd / np.sqrt(n))


def test_detectable_drop_is_the_paired_formula_over_the_differences(tmp_path: Path) -> None:
    base, cand = _pair(tmp_path, 400, sd=0.08)
    result = diff(base, cand, resamples=200, max_drop=2.0)
    (task,) = result.tasks
    assert task.detectable_drop == pytest.approx(_expected(0.08, 400), rel=1e-9)
    assert not task.too_small  # 400 queries at SD 8 points detect ~1.1 points
    frame = result.to_dataframe()
    assert frame.loc[0, "detectable_drop"] == pytest.approx(task.detectable_drop)


def test_a_tiny_task_is_said_too_small_everywhere(tmp_path: Path, capsys) -> None:
    base, cand = _pair(tmp_path, 6, sd=0.2)
    (task,) = diff(base, cand, resamples=200, max_drop=1.0).tasks
    assert task.too_small and 100 * task.detectable_drop > 1.0
    md, junit = tmp_path / "d.md", tmp_path / "d.xml"
    options = ["--max-drop", "1", "--resamples", "200", "--markdown", str(md), "--junit", str(junit)]
    code = main(["diff", str(base), str(cand), *options])
    assert code in (0, 1)
    out = capsys.readouterr().out
    assert "SciFact: too small to detect a drop of 1.00 points at 80% power" in out
    assert "(too small)" in md.read_text() and "too small to detect" in md.read_text()
    case = ET.parse(junit).getroot().find("testcase")
    assert case is not None and "(too small)" in (case.findtext("system-out") or "")


def test_an_sts_task_gets_a_detectable_drop_from_its_jackknife(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    gold = rng.uniform(0, 5, 300)
    base = write_run(tmp_path / "b", sts=(gold, gold + rng.normal(0, 1.5, 300)))
    cand = write_run(tmp_path / "c", model="org/c", sts=(gold, gold + rng.normal(0, 1.6, 300)))
    (task,) = diff(base, cand, resamples=200).tasks
    assert task.detectable_drop is not None and 0 < task.detectable_drop < 0.2


def test_plan_gives_a_size_that_fed_back_detects_the_drop(tmp_path: Path, capsys) -> None:
    baseline = write_run(tmp_path / "baseline", retrieval=0.5 + 0.1 * _standard(200, 5))
    plan = plan_check(["SciFact"], 1.5, baseline)
    (task,) = plan.tasks
    assert task.item_sd == pytest.approx(0.1, rel=1e-9)
    assert task.difference_sd == pytest.approx(0.1, rel=1e-9)  # rho 0.5: the differences' SD is the item SD
    assert task.items == 200 and not task.enough
    # a check of that size whose differences have the assumed SD detects 1.5 points, one item fewer does not
    base, cand = _pair(tmp_path, task.needed, sd=task.difference_sd)
    (fed_back,) = diff(base, cand, resamples=200, max_drop=1.5).tasks
    assert 100 * fed_back.detectable_drop <= 1.5 and not fed_back.too_small
    assert 100 * _expected(task.difference_sd, task.needed - 1) > 1.5
    assert main(["plan", "--tasks", "SciFact", "--max-drop", "1.5", "--baseline", str(baseline)]) == 0
    assert f"SciFact: needs {task.needed:,} items" in capsys.readouterr().out


def test_plan_without_a_baseline_refuses_in_one_line(tmp_path: Path, capsys) -> None:
    assert main(["plan", "--tasks", "SciFact", "--max-drop", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--baseline" in err and len(err.splitlines()) == 1


def test_the_step_summary_gets_the_report_and_the_exit_code_stays(tmp_path: Path, monkeypatch, capsys) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    base, cand = _pair(tmp_path, 300, sd=0.02, shift=0.05)
    assert main(["diff", str(base), str(cand), "--resamples", "200"]) == 1
    text = summary.read_text()
    assert text.startswith("earlier step\n") and "### evalkit diff: ❌ regression" in text
    same = write_run(tmp_path / "same", retrieval=0.5 + 0.1 * _standard(300, 0))
    assert main(["diff", str(base), str(same), "--resamples", "200"]) == 0
    assert summary.read_text().count("### evalkit diff") == 2
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "missing" / "summary.md"))
    assert main(["diff", str(base), str(cand), "--resamples", "200"]) == 1  # unwritable summary: still the verdict
    assert "GITHUB_STEP_SUMMARY" in capsys.readouterr().err
