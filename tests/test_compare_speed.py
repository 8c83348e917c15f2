"""Speed beside scores: the run record's ``throughput`` object, the ablation report's speed ratio, and per-type
deltas with an interval from joint resampling of every task's items."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from run_folders import write_run

import evalkit
from evalkit.cli import main
from evalkit.reports.compare import compare_runs
from evalkit.reports.compare_speed import mean_delta_interval, speed_rows, type_deltas
from evalkit.reports.diff import DiffSettings
from evalkit.reports.runs import load_run
from evalkit.results.throughput import DERIVED, RECORDED, run_throughput, task_throughput
from evalkit.stats.paired import PairedItems

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
FEW = DiffSettings(resamples=500)  # enough for these checks, and quick


def add_throughput(root: Path, texts_per_s: float, *, texts: int = 1000) -> None:
    """Give every run record under ``root`` a throughput object of the given speed (as ``evalkit run`` writes it)."""
    for path in root.rglob("*.run.json"):
        record = json.loads(path.read_text())
        stats = {"encoded": texts, "cached": 0, "tokens": 20 * texts, "encode_ns": int(texts / texts_per_s * 1e9)}
        record["throughput"] = task_throughput({}, stats, device="cpu", precision="fp32")
        path.write_text(json.dumps(record))


@pytest.fixture
def three_runs(tmp_path: Path) -> tuple[Path, Path, Path]:
    rng = np.random.default_rng(1)
    ndcg, gold = rng.random(200), rng.random(200) * 5
    cosine = gold + rng.normal(0, 1.0, 200)
    base = write_run(tmp_path / "base", retrieval=ndcg, sts=(gold, cosine))
    fast = write_run(tmp_path / "fast", revision="int8", retrieval=np.clip(ndcg - 0.01, 0, 1), sts=(gold, cosine))
    unknown = write_run(tmp_path / "unknown", revision="r3", retrieval=ndcg, sts=(gold, cosine))
    add_throughput(base, 400.0)
    add_throughput(fast, 1000.0)
    return base, fast, unknown  # "unknown" keeps records without throughput


def test_speed_ratio_is_shown_next_to_the_score_change(three_runs: tuple[Path, Path, Path], tmp_path: Path) -> None:
    base, fast, unknown = three_runs
    diffs = compare_runs(load_run(base), [load_run(fast), load_run(unknown)], FEW)
    rows = speed_rows(diffs, ["int8", "r3"])
    assert rows[0].throughput is not None and rows[0].throughput.texts_per_s == pytest.approx(400.0)
    assert rows[1].ratio == pytest.approx(2.5) and rows[1].throughput.source == RECORDED
    assert rows[1].throughput.tokens_per_s == pytest.approx(20 * 1000.0)
    assert rows[2].throughput is None and rows[2].ratio is None  # no throughput data: n/a, never 0
    assert rows[1].score_delta == pytest.approx(rows[1].mean_score - rows[0].mean_score) and rows[1].score_delta < 0
    markdown = tmp_path / "report.md"
    argv = ["compare", str(fast), str(unknown), "--baseline", str(base), "--markdown", str(markdown)]
    assert main([*argv, "--resamples", "500"]) == 0
    text = markdown.read_text()
    speed_line = next(line for line in text.splitlines() if line.startswith("| *texts/s"))
    assert speed_line.split("|")[2:5] == [" 400 ", " 1,000 (×2.50) ", " n/a "]
    fast_row = next(line for line in text.splitlines() if line.startswith("| int8 |"))
    cells = [c.strip() for c in fast_row.split("|")[1:-1]]
    assert cells[1:4] == ["1,000", "20,000", "×2.50"] and cells[5].startswith("-")  # speed ratio beside score change
    unknown_row = next(line for line in text.splitlines() if line.startswith("| r3 |"))
    assert "n/a" in unknown_row and " 0 " not in unknown_row


def _items(rng: np.random.Generator, n: int, delta: float) -> PairedItems:
    baseline = rng.random(n)
    return PairedItems("mean", baseline, baseline + delta + rng.normal(0, 0.2, n))


def test_the_type_interval_covers_the_true_delta() -> None:
    """Three tasks of one type with true deltas 0.01, 0.03, 0.05 (mean 0.03): the joint interval covers 0.03 in
    about 95% of repeated draws, and is narrower than the widest task interval would suggest."""
    rng = np.random.default_rng(7)
    covered, trials = 0, 60
    for trial in range(trials):
        tasks = [(f"t{i}", [_items(rng, 150, d)]) for i, d in enumerate((0.01, 0.03, 0.05))]
        low, high = mean_delta_interval(tasks, resamples=400, seed=trial, alpha=0.05)
        covered += low <= 0.03 <= high
    assert covered / trials >= 0.85
    tasks = [(f"t{i}", [_items(rng, 2000, d)]) for i, d in enumerate((0.01, 0.03, 0.05))]
    low, high = mean_delta_interval(tasks, resamples=1000, seed=0, alpha=0.05)
    assert low < 0.03 < high and low > 0  # large samples: the true delta inside, zero outside
    assert mean_delta_interval(tasks, resamples=200, seed=3, alpha=0.05) == mean_delta_interval(
        tasks, resamples=200, seed=3, alpha=0.05
    )  # same seed, same interval


def test_type_deltas_of_a_diff(three_runs: tuple[Path, Path, Path]) -> None:
    base, fast, _ = three_runs
    (diff,) = compare_runs(load_run(base), [load_run(fast)], FEW)
    found = {t.task_type: t for t in type_deltas(diff)}
    retrieval = next(t for t in diff.tasks if t.task == "SciFact")
    assert found["Retrieval"].delta == pytest.approx(retrieval.delta)
    assert found["Retrieval"].low is not None and found["Retrieval"].low <= retrieval.delta <= found["Retrieval"].high
    assert found["STS"].delta == pytest.approx(0.0) and found["STS"].low == pytest.approx(0.0)


def test_old_records_are_read_by_an_estimate_that_says_so() -> None:
    """Before the throughput object: cumulative embedding_stats differenced task by task, encode timings summed."""

    def record(started: str, encoded: int, timings: dict) -> dict:
        stats = {"encoded": encoded, "cached": 0, "oom_retries": 0}
        settings = {"embedding_stats": stats, "device": "cpu", "precision": "fp32"}
        return {"command": ["evalkit"], "started_at": started, "run_settings": settings, "timings": {"splits": timings}}

    records = [
        record("2026-01-01T00:00:02", 300, {"test/default": {"encode_s": 1.0, "score_s": 0.5}}),
        record("2026-01-01T00:00:01", 100, {"test/default": {"encode_corpus_s": 0.5, "search_s": 0.5}}),
        record("2026-01-01T00:00:03", 300, {"test/default": {"encode_s": 0.01}}),  # all from the cache
    ]
    speed = run_throughput(records)
    assert speed is not None and speed.source == DERIVED and speed.tokens_per_s is None
    assert speed.texts_encoded == 300 and speed.texts_per_s == pytest.approx(300 / 2.0)
    assert run_throughput([record("2026-01-01T00:00:01", 0, {"test/default": {"encode_s": 0.1}})]) is None
    assert run_throughput([None, {}]) is None  # published files: no records, n/a
    hostile = [{"timings": [1], "run_settings": "x", "started_at": 3}, {"throughput": {"texts_encoded": "1e9"}}]
    assert run_throughput(hostile) is None  # a malformed record gives no speed, never a crash


@pytest.mark.slow
def test_a_real_run_records_its_throughput_and_a_cached_rerun_says_it_computed_nothing(tmp_path: Path) -> None:
    mirror_task = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "tasks" / "BIOSSES"
    if not mirror_task.is_dir():
        pytest.skip("the shared benchmark data is not there")
    rows = [json.loads(line) for line in (mirror_task / "test.jsonl").read_text().splitlines()[:20]]
    (tmp_path / "mirror" / "BIOSSES").mkdir(parents=True)
    (tmp_path / "mirror" / "BIOSSES" / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    distinct = len({r["sentence1"] for r in rows} | {r["sentence2"] for r in rows})
    records = []
    for output in ("first", "again"):  # one vector cache for both runs
        evalkit.evaluate(
            MODEL, "BIOSSES", data_dir=tmp_path / "mirror", output=tmp_path / output, cache_dir=tmp_path / "cache",
            show_progress=False, on_task_done=None,
        )  # fmt: skip
        records.append(json.loads(next((tmp_path / output).rglob("BIOSSES.run.json")).read_text()))
    first, again = (r["throughput"] for r in records)
    assert first["texts_encoded"] == distinct and first["texts_cached"] == 0 and first["cached_share"] == 0.0
    assert first["tokens_encoded"] > distinct and first["encode_s"] > 0 and first["texts_per_s"] > 1
    assert first["tokens_per_s"] == pytest.approx(first["tokens_encoded"] / first["encode_s"])
    assert first["encode_s"] <= records[0]["timings"]["compute_s"] + 1e-6
    assert 50 < first["peak_rss_mib"] < 64_000 and first["peak_rss_scope"] == "process"
    assert (first["device"], first["precision"]) == ("cpu", "fp32")
    assert again["texts_encoded"] == 0 and again["texts_cached"] == distinct and again["cached_share"] == 1.0
    assert again["texts_per_s"] is None and again["tokens_per_s"] is None  # nothing computed: no speed, not 0
    assert records[1]["timings"]["cached_share"] == 1.0
    result = json.loads(next((tmp_path / "again").rglob("BIOSSES.json")).read_text())
    assert result["evaluation_time"] >= records[1]["timings"]["compute_s"]  # mteb's field, wall time, kept as is
