"""``--backend ray`` for real: a Ray head and a worker node, each its own process group on loopback (CPU only),
run SciFact; the worker node is killed mid-run and started again; the run finishes with the single-process scores
and without computing again a shard that was finished before the kill."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evalkit.cli import main
from evalkit.distributed.local_cluster import LocalRayCluster

pytest.importorskip("ray")
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
RESULT = "sentence-transformers__all-MiniLM-L6-v2/8b3219a92973c328a8e22fadcfa821b5dc75636a"
SHARD_SIZE = 256  # SciFact's 5,183 documents in 22 shards, a few seconds each on one CPU


def evalkit_run(*args: str) -> list[str]:
    return [sys.executable, "-m", "evalkit.cli", "run", "--model", MODEL, "--tasks", "SciFact", "--quiet", *args]


def committed(shards: Path) -> dict[str, int]:
    """Each committed shard's files and their modification times (ns): rewritten means recomputed."""
    keys = [p.stem for p in shards.glob("*.json")]
    return {
        f"{key}{suffix}": (shards / f"{key}{suffix}").stat().st_mtime_ns for key in keys for suffix in (".json", ".npy")
    }


def scores(results: Path) -> dict[str, float]:
    return json.loads((results / RESULT / "SciFact.json").read_text())["scores"]["test"][0]


def backend_record(results: Path) -> dict:
    return json.loads((results / RESULT / "evalkit" / "SciFact.run.json").read_text())["run_settings"]["backend"]


@pytest.mark.slow
def test_scifact_on_a_ray_cluster_survives_losing_its_worker(mirror: Path, tmp_path: Path) -> None:
    data = ["--data-dir", str(mirror)]
    assert (
        main(["run", "--model", MODEL, "--tasks", "SciFact", "--quiet", *data, "--output", str(tmp_path / "local")])
        == 0
    )
    shards = tmp_path / "shards"
    with LocalRayCluster() as cluster:
        worker = cluster.add_worker(cpus=1)
        ray_args = [*data, "--backend", "ray", "--ray-address", cluster.address, "--shard-dir", str(shards)]
        driver = subprocess.Popen(
            evalkit_run(*ray_args, "--shard-size", str(SHARD_SIZE), "--output", str(tmp_path / "ray")),
            env=os.environ.copy(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 600
        while len(committed(shards)) < 2 * 4 and time.monotonic() < deadline and driver.poll() is None:
            time.sleep(0.5)
        before_kill = committed(shards)
        assert driver.poll() is None and len(before_kill) >= 8, driver.stdout.read().decode()[-3000:]  # type: ignore[union-attr]

        cluster.kill_worker(worker)
        time.sleep(3)
        assert driver.poll() is None  # no worker: the driver waits, it does not fail
        cluster.add_worker(cpus=1)
        output, _ = driver.communicate(timeout=900)
        assert driver.returncode == 0, output.decode()[-3000:]

        after = committed(shards)
        assert {name: after[name] for name in before_kill} == before_kill  # finished shards never recomputed
        record = backend_record(tmp_path / "ray")
        n_shards = len(after) // 2
        assert (record["shards_encoded"], record["shards_reused"]) == (n_shards, 0)
        assert sum(w["rows"] for w in record["workers"].values()) == 5183  # each document encoded once
        assert len(record["workers"]) == 2  # the first worker's shards and its replacement's

        ray_scores, local_scores = scores(tmp_path / "ray"), scores(tmp_path / "local")
        assert ray_scores.keys() == local_scores.keys()
        for metric, value in local_scores.items():
            if isinstance(value, float):
                assert ray_scores[metric] == pytest.approx(value, abs=1e-6), metric

        # A run started again over the same store computes nothing: every shard is found.
        again = subprocess.run(
            evalkit_run(*ray_args, "--shard-size", str(SHARD_SIZE), "--output", str(tmp_path / "again")),
            env=os.environ.copy(),
            capture_output=True,
            timeout=600,
        )
        assert again.returncode == 0, again.stderr.decode()[-3000:]
        assert backend_record(tmp_path / "again")["shards_reused"] == n_shards
        assert backend_record(tmp_path / "again")["shards_encoded"] == 0
        assert scores(tmp_path / "again")["ndcg_at_10"] == local_scores["ndcg_at_10"]
        assert committed(shards) == after


def toy_scifact(mirror: Path, folder: Path, n_docs: int = 300) -> Path:
    """The first ``n_docs`` SciFact documents and the test queries judged on them, as a spec-file task."""
    with (mirror / "SciFact" / "corpus.jsonl").open() as handle:
        docs = [json.loads(line) for _, line in zip(range(n_docs), handle, strict=False)]
    kept = {doc["_id"] for doc in docs}
    qrels = [line.split("\t") for line in (mirror / "SciFact" / "qrels" / "test.tsv").read_text().splitlines()[1:]]
    judged = [row for row in qrels if row[1] in kept]
    queries = {row[0] for row in judged}
    data = folder / "data"
    (data / "qrels").mkdir(parents=True)
    (data / "corpus.jsonl").write_text("".join(json.dumps(doc) + "\n" for doc in docs))
    with (mirror / "SciFact" / "queries.jsonl").open() as handle:
        rows = [json.loads(line) for line in handle]
    (data / "queries.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows if r["_id"] in queries))
    (data / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join("\t".join(row) + "\n" for row in judged)
    )
    specs = folder / "specs"
    specs.mkdir()
    (specs / "ToySciFact.yaml").write_text(
        f"name: ToySciFact\ntype: Retrieval\nlanguages: [eng-Latn]\neval_splits: [test]\ndata_dir: {data}\n"
    )
    return specs


def test_without_an_address_a_local_cluster_is_started(
    mirror: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ray

    monkeypatch.setenv("EVALKIT_TASKS_PATH", str(toy_scifact(mirror, tmp_path)))
    args = ["run", "--model", MODEL, "--tasks", "ToySciFact", "--quiet"]
    assert main([*args, "--output", str(tmp_path / "local"), "--no-cache"]) == 0
    try:
        ray_args = [*args, "--backend", "ray", "--shard-dir", str(tmp_path / "shards"), "--shard-size", "64"]
        assert main([*ray_args, "--output", str(tmp_path / "ray")]) == 0
        assert main([*ray_args, "--output", str(tmp_path / "again")]) == 0
    finally:
        ray.shutdown()
    result = f"{RESULT}/ToySciFact.json"
    local, on_ray, again = (
        json.loads((tmp_path / name / result).read_text())["scores"]["test"][0] for name in ("local", "ray", "again")
    )
    numbers = [metric for metric, value in local.items() if isinstance(value, float)]
    assert {m: on_ray[m] for m in numbers} == pytest.approx({m: local[m] for m in numbers}, abs=1e-6)
    assert again == on_ray
    record = json.loads((tmp_path / "again" / RESULT / "evalkit" / "ToySciFact.run.json").read_text())
    assert record["run_settings"]["backend"]["address"] is None
    assert (
        record["run_settings"]["backend"]["shards_encoded"] == 0
        and record["run_settings"]["backend"]["shards_reused"] >= 5
    )


def test_what_the_ray_backend_does_not_run_is_refused_up_front(mirror: Path, tmp_path: Path, capsys) -> None:
    args = ["run", "--model", MODEL, "--tasks", "SciFact", "--data-dir", str(mirror), "--output", str(tmp_path)]
    assert main([*args, "--backend", "ray", "--retrieval", "sparse"]) == 2
    assert "--backend ray runs dense retrieval" in capsys.readouterr().err
    assert main([*args, "--backend", "ray", "--shard-size", "0"]) == 2
    assert "--shard-size must be a positive integer" in capsys.readouterr().err
    assert main([*args, "--backend", "ray", "--model", "bm25"]) == 2
    assert not list(tmp_path.rglob("*.json"))
