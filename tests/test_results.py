"""Results IO: MTEB TaskResult files that mteb's own loader reads, per-item rows, atomic writes."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path

import mteb
import numpy as np
import pytest

from evalkit.evaluators.outcome import PerItemScores, SplitOutcome, TaskOutcome
from evalkit.registry.tasks import default_registry
from evalkit.reports.table import format_table, score_row
from evalkit.results.atomic import write_json, write_jsonl_gz
from evalkit.results.layout import ResultsLayout
from evalkit.results.task_result import mteb_task_result, per_item_rows


def _outcome(split: str, main: float) -> SplitOutcome:
    return SplitOutcome(
        split=split,
        hf_subset="default",
        languages=("cmn-Hans",),
        scores={"cosine_spearman": main, "cosine_pearson": main / 2, "pearson": 0.1234567891},
        main_score=main,
        per_item=PerItemScores(
            item_ids=["0", "1"], values={"gold": np.array([1.0, 2.0]), "cosine": np.array([0.5, 0.7])}
        ),
    )


@pytest.fixture
def atec_outcome() -> TaskOutcome:
    return TaskOutcome(
        task_name="ATEC", splits=[_outcome("validation", 0.3), _outcome("test", 0.5)], evaluation_time_s=1.5
    )


def test_task_result_loads_with_mteb(tmp_path: Path, atec_outcome: TaskOutcome) -> None:
    spec = default_registry().get("ATEC")
    layout = ResultsLayout(tmp_path, "org__model", "abc123")
    obj = mteb_task_result(spec, atec_outcome, mteb_version="2.26.24", finished_at=dt.datetime(2026, 1, 1))
    write_json(layout.task_result("ATEC"), obj)
    result = mteb.TaskResult.from_disk(layout.task_result("ATEC"))
    assert result.task_name == "ATEC"
    assert result.dataset_revision == spec.dataset_revision
    assert result.get_score() == pytest.approx(0.4)
    assert result.scores["test"][0]["main_score"] == 0.5
    assert result.scores["test"][0]["pearson"] == 0.123457  # rounded to 6 decimals as mteb writes
    # mteb can restrict a result to a task's own splits, as a benchmark does
    filtered = result.validate_and_filter_scores(task=mteb.get_task("ATEC"))
    assert set(filtered.scores) == {"validation", "test"}


def test_per_item_rows_are_unrounded(atec_outcome: TaskOutcome, tmp_path: Path) -> None:
    rows = per_item_rows(atec_outcome)
    assert len(rows) == 4
    assert rows[0] == {"split": "validation", "hf_subset": "default", "id": "0", "gold": 1.0, "cosine": 0.5}
    path = tmp_path / "x.per_item.jsonl.gz"
    write_jsonl_gz(path, rows)
    with gzip.open(path, "rt") as handle:
        assert [json.loads(line) for line in handle] == rows


def test_atomic_write_leaves_no_partial_file(tmp_path: Path) -> None:
    target = tmp_path / "a" / "result.json"
    with pytest.raises(TypeError):
        write_json(target, {"bad": object()})
    assert not target.exists()
    write_json(target, {"ok": 1})
    with pytest.raises(TypeError):
        write_json(target, {"bad": object()})
    assert [p.name for p in target.parent.iterdir()] == ["result.json"]  # no temp file left behind
    assert json.loads(target.read_text()) == {"ok": 1}
    assert target.stat().st_mode & 0o044  # readable by others, not mkstemp's 0600


def test_table_reads_result_files(tmp_path: Path, atec_outcome: TaskOutcome) -> None:
    registry = default_registry()
    layout = ResultsLayout(tmp_path, "org__model", "abc123")
    obj = mteb_task_result(registry.get("ATEC"), atec_outcome, mteb_version="2.26.24", finished_at=dt.datetime.now())
    write_json(layout.task_result("ATEC"), obj)
    row = score_row(layout.task_result("ATEC"), registry)
    assert (row.task, row.task_type, row.splits, row.metric) == (
        "ATEC",
        "STS",
        ("validation", "test"),
        "cosine_spearman",
    )
    table = format_table([row], model="org/model")
    assert "| STS | ATEC | validation, test | cosine_spearman | 40.00 |" in table


def test_table_reads_published_files(shared_data: Path) -> None:
    folder = shared_data / "mteb_results" / "results" / "BAAI__bge-base-en-v1.5"
    result_file = next(folder.glob("*/SciFact.json"))
    row = score_row(result_file, default_registry())
    # the one task-score rule: the cells the task expects (SciFact: test), not every split the file holds (+ train)
    expected = mteb.TaskResult.from_disk(result_file).validate_and_filter_scores(task=mteb.get_task("SciFact"))
    assert row.score == pytest.approx(expected.get_score()) and row.splits == ("test",)
