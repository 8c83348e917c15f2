"""The results half of the Python API: ``load_results`` → ``Results``, and the report verbs over it."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import mteb
import numpy as np
import pytest
from hostile import run_cli
from run_folders import write_run

from evalkit.errors import EvalkitError
from evalkit.reports.api import diff, leaderboard
from evalkit.results.api import DATAFRAME_COLUMNS, Results, load_results
from evalkit.results.benchmark_scores import benchmark_scores

PUBLISHED = "BAAI__bge-base-en-v1.5"


def _published(shared_data: Path) -> Path:
    return shared_data / "mteb_results" / "results" / PUBLISHED


def test_published_main_scores_equal_benchmark_scores(shared_data: Path) -> None:
    results = load_results(_published(shared_data))
    assert results.models == ["BAAI/bge-base-en-v1.5"]
    ours = results.main_scores()
    bench = benchmark_scores(_published(shared_data), "BEIR")
    shared = [task for task in bench.per_task if task in ours]
    assert len(shared) >= 5
    for task in shared:
        assert ours[task] == bench.per_task[task], task  # same reader, same rule, same cells: same float


def test_dataframe_is_long_and_holds_every_numeric_metric(shared_data: Path) -> None:
    results = load_results(_published(shared_data), tasks=["SciFact"])
    frame = results.to_dataframe()
    assert tuple(frame.columns) == DATAFRAME_COLUMNS
    (path,) = _published(shared_data).glob("*/SciFact.json")
    cell = mteb.TaskResult.from_disk(path).scores["test"][0]
    test = frame[(frame.task == "SciFact") & (frame.split == "test")].set_index("metric")["value"]
    assert test["ndcg_at_10"] == cell["ndcg_at_10"] and test["main_score"] == cell["main_score"]
    assert set(frame.type) == {"Retrieval"} and set(frame.subset) == {"default"}


def test_save_then_load_round_trips_and_mteb_reads_it(shared_data: Path, tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", retrieval=np.linspace(0, 1, 12), sts=(np.arange(8.0), np.arange(8.0) ** 2))
    sources = [load_results(_published(shared_data), tasks=["SciFact", "NFCorpus"]), load_results(run)]
    for index, original in enumerate(sources):
        out = tmp_path / f"saved{index}"
        written = original.save(out)
        assert all(path.is_file() for path in written)
        again = load_results(out)
        assert again.main_scores() == original.main_scores()
        assert again.to_dataframe().equals(original.to_dataframe())
        for path in out.glob("*/*/*.json"):
            if path.name != "model_meta.json":
                assert mteb.TaskResult.from_disk(path).task_name == path.stem
    saved = load_results(tmp_path / "saved1")
    items = saved.per_item("SciFact")
    assert list(items.columns[:3]) == ["split", "subset", "id"] and len(items) == 12
    assert items["ndcg_at_10"].tolist() == pytest.approx(np.linspace(0, 1, 12).tolist())


def test_selection_errors_name_the_choices(tmp_path: Path, shared_data: Path) -> None:
    runs = Results(
        [
            *load_results(write_run(tmp_path / "a", retrieval=np.ones(3))).runs,
            *load_results(write_run(tmp_path / "b", revision="def456", retrieval=np.ones(3))).runs,
        ]
    )
    with pytest.raises(EvalkitError, match="org/model@abc123, org/model@def456"):
        runs.main_scores()
    assert runs.main_scores(revision="def456") == {"SciFact": 1.0}
    with pytest.raises(EvalkitError, match="no per-item scores"):
        load_results(_published(shared_data), tasks=["SciFact"]).per_item("SciFact")


def test_leaderboard_dataframe_matches_the_cli(shared_data: Path, tmp_path: Path, capsys) -> None:
    root = shared_data / "mteb_results" / "results"
    outcome = run_cli(["leaderboard", root, "--benchmark", "BEIR", "--format", "csv", "--decimals", "4"], capsys)
    assert outcome.code == 0
    printed = list(csv.reader(io.StringIO(outcome.stdout)))
    frame = leaderboard(root, "BEIR").to_dataframe()
    assert list(frame.columns) == printed[0]
    for row, (_, values) in zip(printed[1:], frame.iterrows(), strict=True):
        assert [row[0], row[1]] == [str(values.iloc[0]), values.iloc[1]]
        for text, value in zip(row[3:], values.iloc[3:], strict=True):
            assert text == ("" if math.isnan(value) else f"{100 * value:.4f}")
    from_results = leaderboard([load_results(root)], "BEIR").to_dataframe()
    assert from_results.equals(frame)


def test_diff_dataframe_and_exit_code_match_the_cli(tmp_path: Path, capsys) -> None:
    rng = np.random.default_rng(0)
    ndcg = rng.random(80)
    base = write_run(tmp_path / "b", retrieval=ndcg)
    cand = write_run(tmp_path / "c", retrieval=np.clip(ndcg - 0.1, 0, 1))
    outcome = run_cli(["diff", base, cand, "--resamples", "200"], capsys)
    result = diff(base, cand, resamples=200)
    assert result.exit_code == outcome.code == 1
    frame = result.to_dataframe()
    (line,) = [line for line in outcome.stdout.splitlines() if line.startswith("SciFact")]
    assert frame.loc[0, "verdict"] in line and f"{100 * frame.loc[0, 'delta']:+.2f}" in line
    assert diff(load_results(base), load_results(base), resamples=200).exit_code == 0
    with pytest.raises(EvalkitError, match="unknown setting"):
        diff(base, cand, resample=10)
    with pytest.raises(EvalkitError) as info:
        diff(base, cand, alpha=5)
    assert info.value.field == "alpha"
