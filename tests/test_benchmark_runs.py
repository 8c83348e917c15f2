"""Benchmark runs through the CLI: tasks from a benchmark definition, partial runs, CQADupStack combined."""

from __future__ import annotations

import json
from pathlib import Path

import mteb
import pytest

from evalkit.cli import EXIT_INCOMPLETE, main
from evalkit.registry.benchmarks import get_benchmark

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
RESULTS = "sentence-transformers__all-MiniLM-L6-v2/8b3219a92973c328a8e22fadcfa821b5dc75636a"
FORUMS = get_benchmark("BEIR").aggregates["CQADupstackRetrieval"]


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def write_benchmark(folder: Path, text: str) -> None:
    (folder / "benchmarks").mkdir(parents=True, exist_ok=True)
    (folder / "benchmarks" / "Mini.yaml").write_text(text)


def test_benchmark_run_with_a_missing_task(
    mirror: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    write_benchmark(tmp_path / "specs", "name: Mini\ntasks: [BIOSSES, STS17]\n")
    monkeypatch.setenv("EVALKIT_TASKS_PATH", str(tmp_path / "specs"))
    args = ["run", "--model", MODEL, "--benchmark", "Mini", "--data-dir", str(mirror), "--no-hub", "--quiet"]
    assert main([*args, "--output", str(tmp_path / "out")]) == EXIT_INCOMPLETE
    captured = capsys.readouterr()
    assert "STS17: no data for task 'STS17'" in captured.err
    assert "Mini: mean over tasks missing" in captured.out and "missing (1): STS17" in captured.out
    assert (tmp_path / "out" / RESULTS / "BIOSSES.json").is_file()
    assert main([*args, "--output", str(tmp_path / "out"), "--allow-missing"]) == 0


def test_cqadupstack_forums_are_run_and_combined(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for number, forum in enumerate(FORUMS):
        folder = tmp_path / "data" / forum
        docs = [f"how to fix error {number} in the build", "a recipe for bread", f"install package {number} offline"]
        write_jsonl(folder / "corpus.jsonl", [{"_id": f"d{i}", "title": "", "text": t} for i, t in enumerate(docs)])
        write_jsonl(folder / "queries.jsonl", [{"_id": "q1", "text": f"build error {number}"}])
        (folder / "qrels").mkdir()
        (folder / "qrels" / "test.tsv").write_text(f"query-id\tcorpus-id\tscore\nq1\td{number % 3}\t1\n")
    forums = "".join(f"    - {forum}\n" for forum in FORUMS)
    write_benchmark(
        tmp_path / "specs",
        f"name: Mini\ntasks: [CQADupstackRetrieval]\naggregates:\n  CQADupstackRetrieval:\n{forums}",
    )
    monkeypatch.setenv("EVALKIT_TASKS_PATH", str(tmp_path / "specs"))
    out = tmp_path / "out"
    code = main(["run", "--model", MODEL, "--benchmark", "Mini", "--data-dir", str(tmp_path / "data"),
                 "--output", str(out), "--no-hub", "--quiet"])  # fmt: skip
    assert code == 0
    members = [mteb.TaskResult.from_disk(out / RESULTS / f"{forum}.json") for forum in FORUMS]
    combined = mteb.TaskResult.from_disk(out / RESULTS / "CQADupstackRetrieval.json")
    expected = sum(m.scores["test"][0]["ndcg_at_10"] for m in members) / len(members)
    assert combined.scores["test"][0]["ndcg_at_10"] == pytest.approx(expected, abs=1e-6)
    assert combined.get_score() == pytest.approx(expected, abs=1e-6)


def test_benchmark_listing(capsys: pytest.CaptureFixture) -> None:
    assert main(["tasks", "--benchmark", "C-MTEB"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("MTEB(cmn, v1)") and out.rstrip().endswith("31 tasks")
    assert main(["tasks", "--benchmark", "MTEB(eng, v1)", "--type", "STS"]) == 0
    out = capsys.readouterr().out
    assert "STS17" in out and "en-en" not in out  # languages shown, not subsets
    assert main(["tasks", "--benchmark", "BEIR"]) == 0
    out = capsys.readouterr().out
    assert out.rstrip().endswith("18 tasks") and "not in mteb" in out
    assert main(["tasks", "--benchmark", "NoSuchBench"]) == 2
