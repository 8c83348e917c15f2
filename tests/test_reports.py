"""Regression diff, ablation comparison, leaderboard and submission, on run folders in evalkit's layout."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from run_folders import write_run

from evalkit.cli import main
from evalkit.reports.diff import DiffSettings, diff_runs
from evalkit.reports.escape import escape_latex, escape_markdown
from evalkit.reports.leaderboard import borda_ranks, build_leaderboard, render
from evalkit.reports.runs import load_run

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "results" / "sentence-transformers__all-MiniLM-L6-v2"
EVIL = "<script>alert(1)</script>"


@pytest.fixture()
def scores() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    gold = rng.random(300) * 5
    return {
        "ndcg": rng.random(300),
        "gold": gold,
        "cosine": gold + rng.normal(0, 1.0, 300),
        "noise": rng.normal(0, 0.03, 300),
    }


def test_identical_runs_pass_and_a_degraded_run_fails_naming_the_task(tmp_path: Path, scores, capsys) -> None:
    base = write_run(tmp_path / "base", retrieval=scores["ndcg"], sts=(scores["gold"], scores["cosine"]))
    same = write_run(tmp_path / "same", retrieval=scores["ndcg"], sts=(scores["gold"], scores["cosine"]))
    degraded = np.clip(scores["ndcg"] - 0.08 + scores["noise"], 0, 1)
    worse = write_run(tmp_path / "worse", retrieval=degraded, sts=(scores["gold"], scores["cosine"]))

    assert main(["diff", str(base), str(same)]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("OK:")

    md, junit = tmp_path / "diff.md", tmp_path / "diff.xml"
    assert main(["diff", str(base), str(worse), "--markdown", str(md), "--junit", str(junit)]) == 1
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("REGRESSION") and "SciFact" in last and "STSBenchmark" not in last
    suite = ET.parse(junit).getroot()
    assert suite.get("tests") == "2" and suite.get("failures") == "1"
    failed = [case.get("name") for case in suite.iter("testcase") if case.find("failure") is not None]
    assert failed == ["SciFact"]
    assert "| SciFact |" in md.read_text() or "SciFact" in md.read_text()

    # a tolerance larger than the drop turns the verdict back to OK
    assert main(["diff", str(base), str(worse), "--max-drop", "10"]) == 0


def test_every_test_flags_the_same_real_drop(tmp_path: Path, scores) -> None:
    base = load_run(write_run(tmp_path / "b", retrieval=scores["ndcg"]))
    worse = load_run(write_run(tmp_path / "w", retrieval=np.clip(scores["ndcg"] - 0.05 + scores["noise"], 0, 1)))
    for test in ("bootstrap", "permutation", "ttest"):
        diff = diff_runs(base, worse, DiffSettings(test=test, resamples=2000))
        (task,) = diff.tasks
        assert task.regression and task.p_adjusted < 0.001, test
        assert task.test.ci_high < 0 < -task.test.ci_low
        assert task.test.losses > task.test.wins


def test_runs_that_cannot_be_compared_exit_2(tmp_path: Path, scores, capsys) -> None:
    base = write_run(tmp_path / "base", retrieval=scores["ndcg"], sts=(scores["gold"], scores["cosine"]))
    other_data = write_run(
        tmp_path / "other", retrieval=scores["ndcg"], sts=(scores["gold"], scores["cosine"]), corpus_sha="bbb"
    )
    assert main(["diff", str(base), str(other_data)]) == 2
    assert "different data (corpus.jsonl differ)" in capsys.readouterr().err
    fewer = write_run(tmp_path / "fewer", retrieval=scores["ndcg"])
    assert main(["diff", str(base), str(fewer)]) == 2
    assert "STSBenchmark (only in baseline)" in capsys.readouterr().err
    assert main(["diff", str(base), str(tmp_path / "nowhere")]) == 2
    assert "not a results folder" in capsys.readouterr().err


def test_diff_between_published_files_is_judged_on_the_drop_alone(tmp_path: Path) -> None:
    published = Path(__file__).resolve().parents[2] / "shared/data/mteb_results/results/BAAI__bge-base-en-v1.5"
    if not published.is_dir():
        pytest.skip("../shared/data/mteb_results not beside the repository")
    base, cand = tmp_path / "a" / "BAAI__bge-base-en-v1.5", tmp_path / "b" / "BAAI__bge-base-en-v1.5"
    shutil.copytree(published, base)
    shutil.copytree(published, cand)
    diff = diff_runs(load_run(tmp_path / "a"), load_run(tmp_path / "b"))
    assert diff.exit_code == 0 and all(t.test is None and "no per-item" in (t.note or "") for t in diff.tasks)


def test_compare_html_renders_escaped_names_and_charts(tmp_path: Path, scores) -> None:
    base = write_run(tmp_path / "base", retrieval=scores["ndcg"], sts=(scores["gold"], scores["cosine"]))
    better = write_run(
        tmp_path / "better",
        model=EVIL,
        revision="r2",
        retrieval=np.clip(scores["ndcg"] + 0.05 + scores["noise"], 0, 1),
        sts=(scores["gold"], scores["cosine"]),
    )
    html, md = tmp_path / "report.html", tmp_path / "report.md"
    assert main(["compare", str(better), "--baseline", str(base), "--html", str(html), "--markdown", str(md)]) == 0
    page = html.read_text()
    assert EVIL not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count("<svg") == 2 and "▲" in page
    assert "src=" not in page and "href=" not in page and "<script" not in page  # self-contained, nothing runs
    assert EVIL not in md.read_text()


def test_escaping_for_markdown_and_latex() -> None:
    assert escape_markdown("a|b <x>") == "a\\|b &lt;x&gt;"
    assert escape_latex("50% of $x_1$ & {y}") == r"50\% of \$x\_1\$ \& \{y\}"


def test_borda_rank_matches_mteb_rule() -> None:
    import polars as pl
    from mteb.benchmarks._create_table import _borda_rank_from_long

    # t1 ranks C, A, B → 2, 1, 0 points; t2 (C missing) ranks A, B → 2, 1: totals A 3, B 1, C 2
    assert borda_ranks([{"t1": 0.9, "t2": 0.7}, {"t1": 0.8, "t2": 0.5}, {"t1": 0.95, "t2": None}]) == [1, 3, 2]
    assert borda_ranks([{"t1": 0.5}, {"t1": 0.5}, {"t1": 0.4}]) == [1, 1, 3]  # a tie shares the average rank
    rng = np.random.default_rng(7)
    rows = [
        {f"t{t}": (None if rng.random() < 0.2 else round(float(rng.random()), 2)) for t in range(6)} for _ in range(8)
    ]
    long = pl.DataFrame(
        [
            {"model_name": f"m{i}", "task_name": t, "score": v}
            for i, row in enumerate(rows)
            for t, v in row.items()
            if v is not None
        ]
    )
    theirs = dict(_borda_rank_from_long(long, n_models=len(rows)).iter_rows())
    assert borda_ranks(rows) == [theirs[f"m{i}"] for i in range(len(rows))]


def test_leaderboard_over_published_results(tmp_path: Path, capsys) -> None:
    published = Path(__file__).resolve().parents[2] / "shared/data/mteb_results"
    if not published.is_dir():
        pytest.skip("../shared/data/mteb_results not beside the repository")
    board = build_leaderboard([published], "MTEB(eng, v1)")
    names = [row.model for row in board.rows]
    assert "BAAI/bge-base-en-v1.5" in names and len(names) == 7
    bge = next(r for r in board.rows if r.model == "BAAI/bge-base-en-v1.5")
    chinese = next(r for r in board.rows if r.model == "BAAI/bge-small-zh-v1.5")
    assert chinese.mean is None  # missing English tasks: empty, never a partial mean
    assert bge.per_task["SciFact"] is not None
    out = tmp_path / "board.csv"
    assert (
        main(["leaderboard", str(published), "--benchmark", "MTEB(eng, v1)", "--format", "csv", "--out", str(out)]) == 0
    )
    header = out.read_text().splitlines()[0].split(",")
    assert header[:3] == ["Rank (Borda)", "Model", "Revision"]
    for fmt in ("md", "html", "latex"):
        assert render(board, fmt)


def test_leaderboard_escapes_model_names(tmp_path: Path, scores) -> None:
    shutil.copytree(COMMITTED, tmp_path / "evil" / "x")
    for meta in (tmp_path / "evil").rglob("model_meta.json"):
        meta.write_text(json.dumps({**json.loads(meta.read_text()), "name": EVIL}))
    board = build_leaderboard([tmp_path / "evil"])
    for fmt in ("md", "html", "latex", "csv"):
        text = render(board, fmt)
        assert EVIL not in text or fmt == "csv", fmt


def test_submit_writes_the_results_layout_that_mteb_loads(tmp_path: Path, monkeypatch) -> None:
    import mteb

    out = tmp_path / "repo"
    assert main(["submit", str(COMMITTED), "--out", str(out)]) == 0
    (revision_dir,) = (out / "results" / "sentence-transformers__all-MiniLM-L6-v2").iterdir()
    assert (revision_dir / "model_meta.json").is_file()
    loaded = mteb.TaskResult.from_disk(revision_dir / "STSBenchmark.json")
    assert loaded.get_score() == pytest.approx(0.820325, abs=1e-6)
    monkeypatch.setenv("MTEB_CACHE", str(out))
    from mteb.cache import ResultCache

    results = ResultCache(out).load_results(include_remote=False, require_model_meta=True)
    models = [m.model_name for m in results.model_results]
    assert models == ["sentence-transformers/all-MiniLM-L6-v2"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["scores"]["test"][0].update(main_score=float("nan")), "non-finite score"),
        (lambda d: d.update(task_name="NoSuchTask"), "unknown task"),
        (lambda d: d["scores"].update(test=[]) or d["scores"].setdefault("dev", []), "missing split 'test'"),
    ],
)
def test_submit_refuses_results_the_leaderboard_would_not_accept(tmp_path: Path, capsys, change, message) -> None:
    run = tmp_path / "run" / "m"
    shutil.copytree(COMMITTED, run)
    (target,) = run.glob("*/STSBenchmark.json")
    data = json.loads(target.read_text())
    change(data)
    target.write_text(json.dumps(data))
    assert main(["submit", str(tmp_path / "run"), "--out", str(tmp_path / "repo")]) == 2
    err = capsys.readouterr().err
    assert message in err and "STSBenchmark.json" in err
    assert not (tmp_path / "repo" / "results" / "sentence-transformers__all-MiniLM-L6-v2").exists()


def test_submit_refuses_a_model_without_revision_or_an_ablation(tmp_path: Path, capsys) -> None:
    for revision, message in (("no_revision_available", "no revision"), ("8b32+pooling-cls", "changed settings")):
        run = tmp_path / revision / "m"
        shutil.copytree(COMMITTED, run)
        (meta,) = run.glob("*/model_meta.json")
        meta.write_text(json.dumps({**json.loads(meta.read_text()), "revision": revision}))
        assert main(["submit", str(tmp_path / revision), "--out", str(tmp_path / "repo")]) == 2
        assert message in capsys.readouterr().err


def test_each_revision_ranks_a_models_hybrids_beside_it(tmp_path: Path) -> None:
    commit = "8b3219a92973c328a8e22fadcfa821b5dc75636a"
    hybrid = {"retrieval": "hybrid-rrf", "sparse": "bm25"}  # an experiment of the revision, stored as mteb does
    write_run(tmp_path, revision=commit, retrieval=np.full(20, 0.60))
    write_run(tmp_path, revision=commit, retrieval=np.full(20, 0.70), experiment_kwargs=hybrid)
    (joined,) = build_leaderboard([tmp_path]).rows  # mteb's view: one model, its experiments left out
    assert joined.per_task["SciFact"] == pytest.approx(0.60)
    board = build_leaderboard([tmp_path], each_revision=True)
    assert [row.revision for row in board.rows] == [f"{commit}+retrieval_hybrid-rrf__sparse_bm25", commit]
    assert "org/model (8b3219a92973+retrieval_hybrid-rrf\\_\\_sparse_bm25)" in render(board, "md")  # _ escaped


def test_a_legacy_sibling_revision_folder_still_ranks_beside_the_model(tmp_path: Path) -> None:
    """Folders an older evalkit wrote (``<revision>+retrieval-...`` beside the revision) still read."""
    commit = "8b3219a92973c328a8e22fadcfa821b5dc75636a"
    write_run(tmp_path, revision=commit, retrieval=np.full(20, 0.60))
    write_run(tmp_path, revision=f"{commit}+retrieval-hybrid-rrf+sparse-bm25", retrieval=np.full(20, 0.70))
    board = build_leaderboard([tmp_path], each_revision=True)
    assert [row.revision for row in board.rows] == [f"{commit}+retrieval-hybrid-rrf+sparse-bm25", commit]
