"""The packaged all-MiniLM-L6-v2 through the CLI on real data: the published leaderboard numbers come out."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import mteb
import pytest

from evalkit.cli import main

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
REVISION = "8b3219a92973c328a8e22fadcfa821b5dc75636a"
RESULTS = f"sentence-transformers__all-MiniLM-L6-v2/{REVISION}"


def run_cli(*args: str) -> int:
    return main(["run", "--model", MODEL, "--quiet", "--no-hub", *args])


def load_with_mteb(path: Path) -> mteb.TaskResult:
    return mteb.TaskResult.from_disk(path)


def test_stsbenchmark_equals_the_leaderboard(mirror: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert run_cli("--tasks", "STSBenchmark", "--data-dir", str(mirror), "--output", str(tmp_path)) == 0
    result_file = tmp_path / RESULTS / "STSBenchmark.json"
    result = load_with_mteb(result_file)
    test_scores = result.scores["test"][0]
    assert test_scores["cosine_spearman"] == pytest.approx(0.82032, abs=5e-4)
    assert test_scores["main_score"] == test_scores["cosine_spearman"]
    assert result.get_score() == pytest.approx(0.82032, abs=5e-4)
    with gzip.open(tmp_path / RESULTS / "evalkit" / "STSBenchmark.per_item.jsonl.gz", "rt") as handle:
        pairs = [json.loads(line) for line in handle]
    assert len(pairs) == 1379 and {"gold", "cosine", "manhattan", "euclidean"} <= set(pairs[0])
    record = json.loads((tmp_path / RESULTS / "evalkit" / "STSBenchmark.run.json").read_text())
    assert record["model"]["weights_sha256"] and record["data"]["files"][0]["sha256"]
    assert len(record["data"]["content_sha256"]) == 64  # data identity by the rows loaded, not by file names
    assert record["packages"]["torch"] and record["machine"]["cpu_count"]
    meta = json.loads((tmp_path / RESULTS / "model_meta.json").read_text())
    assert (meta["name"], meta["revision"]) == (MODEL, REVISION)
    assert "STSBenchmark" in capsys.readouterr().out


@pytest.mark.slow
def test_scifact_equals_the_leaderboard(mirror: Path, tmp_path: Path) -> None:
    assert run_cli("--tasks", "SciFact", "--data-dir", str(mirror), "--output", str(tmp_path)) == 0
    result = load_with_mteb(tmp_path / RESULTS / "SciFact.json")
    scores = result.scores["test"][0]
    assert scores["ndcg_at_10"] == pytest.approx(0.64508, abs=5e-4)
    assert scores["main_score"] == scores["ndcg_at_10"]
    with gzip.open(tmp_path / RESULTS / "evalkit" / "SciFact.per_item.jsonl.gz", "rt") as handle:
        queries = [json.loads(line) for line in handle]
    assert len(queries) == 300
    mean_ndcg = sum(q["ndcg_at_10"] for q in queries) / len(queries)
    assert round(mean_ndcg, 5) == scores["ndcg_at_10"]


def _copy_task(mirror: Path, task: str, dest: Path) -> Path:
    target = dest / task
    shutil.copytree(mirror / task, target)
    return target


def test_malformed_jsonl_exits_2_and_writes_nothing(
    mirror: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    data = tmp_path / "data"
    folder = _copy_task(mirror, "STSBenchmark", data)
    lines = (folder / "test.jsonl").read_text().splitlines()
    lines[41] = lines[41][:-5]  # cut a line short: invalid JSON on line 42
    (folder / "test.jsonl").write_text("\n".join(lines) + "\n")
    out = tmp_path / "results"
    assert run_cli("--tasks", "STSBenchmark", "--data-dir", str(data), "--output", str(out)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "test.jsonl:42" in err
    assert not out.exists()


def test_missing_field_names_file_line_and_field(mirror: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = tmp_path / "data"
    folder = _copy_task(mirror, "STSBenchmark", data)
    rows = [json.loads(line) for line in (folder / "test.jsonl").read_text().splitlines()]
    del rows[6]["sentence2"]
    (folder / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "results"
    assert run_cli("--tasks", "STSBenchmark", "--data-dir", str(data), "--output", str(out)) == 2
    err = capsys.readouterr().err
    assert "test.jsonl:7" in err and "sentence2" in err
    assert not out.exists()


def test_qrels_naming_an_unknown_document(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = tmp_path / "data" / "SciFact"
    (data / "qrels").mkdir(parents=True)
    (data / "corpus.jsonl").write_text('{"_id": "d1", "title": "", "text": "a document"}\n')
    (data / "queries.jsonl").write_text('{"_id": "q1", "text": "a query"}\n')
    (data / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td9\t1\n")
    out = tmp_path / "results"
    assert run_cli("--tasks", "SciFact", "--data-dir", str(data.parent), "--output", str(out)) == 2
    err = capsys.readouterr().err
    assert "test.tsv:3" in err and "corpus-id" in err
    assert not out.exists()


def test_missing_split_and_missing_task_data(mirror: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = tmp_path / "data"
    folder = _copy_task(mirror, "ATEC", data)
    (folder / "test.jsonl").unlink()
    out = tmp_path / "results"
    assert run_cli("--tasks", "ATEC", "--data-dir", str(data), "--output", str(out)) == 2
    assert "test" in capsys.readouterr().err
    assert run_cli("--tasks", "STS12", "--data-dir", str(data), "--output", str(out)) == 2
    err = capsys.readouterr().err
    assert str(data / "STS12") in err and "STS12" in err
    assert not out.exists()


def test_unknown_task_and_model(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert run_cli("--tasks", "NoSuchTask", "--output", str(tmp_path)) == 2
    assert "NoSuchTask" in capsys.readouterr().err
    assert main(["run", "--model", "no-org/no-model", "--tasks", "STS12", "--output", str(tmp_path)]) == 2
    assert "no-org/no-model" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_tasks_and_models_listings(capsys: pytest.CaptureFixture) -> None:
    assert main(["tasks", "--type", "Retrieval"]) == 0
    out = capsys.readouterr().out
    assert "SciFact" in out and "STSBenchmark" not in out
    assert main(["tasks", "--lang", "cmn"]) == 0
    out = capsys.readouterr().out
    assert "ATEC" in out and "SciFact" not in out
    assert main(["models"]) == 0
    assert "all-MiniLM-L6-v2" in capsys.readouterr().out


def test_a_user_dataset_runs_from_one_spec_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    data = tmp_path / "toy"
    (data / "qrels").mkdir(parents=True)
    docs = {
        "d1": "The cat sat on the mat.",
        "d2": "Stock markets fell sharply on Monday.",
        "d3": "A recipe for chocolate cake with dark cocoa.",
        "d4": "The football team won the championship final.",
    }
    queries = {"q1": "where did the cat sit", "q2": "how to bake a chocolate cake", "q3": "who won the final"}
    qrels = [("q1", "d1", 1), ("q2", "d3", 1), ("q3", "d4", 2), ("q3", "d2", 0)]
    (data / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": k, "title": "", "text": v}) + "\n" for k, v in docs.items())
    )
    (data / "queries.jsonl").write_text("".join(json.dumps({"_id": k, "text": v}) + "\n" for k, v in queries.items()))
    (data / "qrels" / "dev.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{s}\n" for q, d, s in qrels)
    )
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "ToyRetrieval.yaml").write_text(
        f"name: ToyRetrieval\ntype: Retrieval\nlanguages: [eng-Latn]\neval_splits: [dev]\ndata_dir: {data}\n"
    )
    monkeypatch.setenv("EVALKIT_TASKS_PATH", str(specs))
    assert main(["tasks", "--type", "Retrieval"]) == 0
    assert "ToyRetrieval" in capsys.readouterr().out
    out = tmp_path / "results"
    assert run_cli("--tasks", "ToyRetrieval", "--output", str(out)) == 0
    result = load_with_mteb(out / RESULTS / "ToyRetrieval.json")
    scores = result.scores["dev"][0]
    assert scores["main_score"] == scores["ndcg_at_10"] == 1.0  # the model finds every answer first
    assert scores["recall_at_1"] == 1.0 and scores["precision_at_3"] == pytest.approx(1 / 3, abs=1e-5)
    # the faiss backend ranks identically: same per-query scores, and the run records which backend searched
    faiss_out = tmp_path / "results-faiss"
    assert run_cli("--tasks", "ToyRetrieval", "--output", str(faiss_out), "--search-backend", "faiss") == 0
    assert load_with_mteb(faiss_out / RESULTS / "ToyRetrieval.json").scores == result.scores
    record = json.loads((faiss_out / RESULTS / "evalkit" / "ToyRetrieval.run.json").read_text())
    assert record["run_settings"]["search_backend"] == "faiss"
