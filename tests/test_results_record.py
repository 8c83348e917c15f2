"""One results folder, one answer: a task with a missing cell or a NaN main score is missing in every consumer.

The run table, the leaderboard, benchmark scores, ``Results.main_scores``, ``diff``, ``compare`` and ``submit`` all
read the folder with the one reader and score it with the one rule: never a partial mean, never a verdict.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hostile import run_cli

from evalkit.registry.benchmarks import Benchmark
from evalkit.registry.tasks import default_registry
from evalkit.reports.api import leaderboard
from evalkit.reports.table import format_table, score_row
from evalkit.results.api import load_results
from evalkit.results.benchmark_scores import benchmark_scores
from evalkit.results.task_score import task_score

MODEL, REVISION = "org/model", "8b3219a92973c328a8e22fadcfa821b5dc75636a"
GOOD = {"SciFact": (("test", 0.6),), "ATEC": (("validation", 0.3), ("test", 0.5))}
BAD = {
    "ATEC": (("test", 0.5),),  # the validation cell the task expects is not there
    "STSBenchmark": (("test", float("nan")),),  # written by something that let a NaN through
}


def _empty_model_meta() -> dict:
    """mteb's own ModelMeta for a model it knows nothing about: valid, every unknown field empty."""
    from mteb.models.model_meta import ModelMeta

    return ModelMeta.create_empty({"name": MODEL, "revision": REVISION}).to_dict()


def _write(root: Path, tasks: dict[str, tuple[tuple[str, float], ...]]) -> Path:
    folder = root / MODEL.replace("/", "__") / REVISION
    folder.mkdir(parents=True)
    (folder / "model_meta.json").write_text(json.dumps(_empty_model_meta(), default=str))
    for name, cells in tasks.items():
        scores: dict[str, list] = {}
        for split, value in cells:
            cell = {"main_score": value, "hf_subset": "default", "languages": ["eng-Latn"]}
            scores.setdefault(split, []).append(cell)
        result = {"dataset_revision": "r", "task_name": name, "mteb_version": "2.26.24", "scores": scores}
        result |= {"evaluation_time": 1.0, "kg_co2_emissions": None}
        (folder / f"{name}.json").write_text(json.dumps(result))  # NaN as JSON's NaN, as Python writes it
    return root


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return _write(tmp_path / "results", {"SciFact": GOOD["SciFact"], **BAD})


def test_the_rule_itself() -> None:
    scores = {"test": [{"hf_subset": "a", "main_score": 0.2}, {"hf_subset": "b", "main_score": 0.4}]}
    assert task_score(scores, {"test": ("a", "b")})[0] == pytest.approx(0.3)
    assert task_score(scores, {"test": ("a",)})[0] == pytest.approx(0.2)  # a cell the task does not expect: unused
    assert task_score(scores, {"test": ("a", "c")}) == (None, "split 'test' lacks subsets c")
    assert task_score(scores, {"dev": ("a",)}) == (None, "missing split 'dev'")
    for bad in (None, float("nan"), "0.5", True, float("inf")):
        broken = {"test": [{"hf_subset": "a", "main_score": bad}]}
        assert task_score(broken, {"test": ("a",)})[0] is None


def test_every_reader_finds_the_same_tasks_missing(folder: Path) -> None:
    revision_dir = folder / "org__model" / REVISION
    registry = default_registry()
    rows = {name: score_row(revision_dir / f"{name}.json", registry) for name in ("SciFact", "ATEC", "STSBenchmark")}
    table = {name: row.score for name, row in rows.items()}
    assert "| missing |" in format_table(list(rows.values()), model=MODEL)

    board = leaderboard(folder).rows[0].per_task
    bench = Benchmark(name="Mini", task_names=("SciFact", "ATEC", "STSBenchmark"), source="test")
    benchmark = benchmark_scores(revision_dir, bench)
    api = load_results(folder).main_scores()

    expected = {"SciFact": pytest.approx(0.6), "ATEC": None, "STSBenchmark": None}
    for found in (table, board, benchmark.per_task, api):
        assert found == expected
    assert benchmark.missing == ["ATEC", "STSBenchmark"] and benchmark.mean is None
    assert leaderboard(folder).rows[0].mean is None


@pytest.mark.parametrize("bad", sorted(BAD))
def test_diff_compare_and_submit_refuse_the_missing_task(tmp_path: Path, capsys, bad: str) -> None:
    base = _write(tmp_path / "base", {"SciFact": GOOD["SciFact"], bad: BAD[bad]})
    cand = _write(tmp_path / "cand", {"SciFact": GOOD["SciFact"], bad: BAD[bad]})
    for argv in (["diff", base, cand], ["compare", cand, "--baseline", base]):
        outcome = run_cli(argv, capsys)
        assert outcome.code == 2 and bad in outcome.error_line, (argv, outcome)
        assert "no finite main score" in outcome.error_line
    outcome = run_cli(["submit", base, "--out", tmp_path / "repo"], capsys)
    assert outcome.code == 2 and f"{bad}.json" in outcome.error_line
    assert not (tmp_path / "repo" / "results").exists()


def test_a_complete_folder_passes_everywhere(tmp_path: Path, capsys) -> None:
    base = _write(tmp_path / "base", GOOD)
    cand = _write(tmp_path / "cand", GOOD)
    assert load_results(base).main_scores() == {"ATEC": pytest.approx(0.4), "SciFact": pytest.approx(0.6)}
    assert run_cli(["diff", base, cand], capsys).code == 0
    assert run_cli(["submit", base, "--out", tmp_path / "repo"], capsys).code == 0
