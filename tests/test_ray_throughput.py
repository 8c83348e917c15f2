"""``--backend ray``: the corpus texts that Ray workers encode count in the run record's ``throughput`` (texts,
unpadded tokens, and the workers' seconds, summed over workers and said to be), as the local core's own do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_ray_backend import toy_scifact

from evalkit.distributed.ray_backend import count_worker_encoding
from evalkit.distributed.worker import ShardDone
from evalkit.results.throughput import WORKERS_SUMMED, task_throughput

MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def test_worker_shards_reach_the_throughput_summed_over_workers() -> None:
    before = {"encoded": 3, "cached": 0, "tokens": 30, "encode_ns": 1_000_000_000}
    stats = dict(before)
    done = [
        ShardDone("a", rows=10, seconds=2.0, worker="n1:1", tokens=100),
        ShardDone("b", rows=6, seconds=1.0, worker="n2:7", tokens=60),
        ShardDone("c", rows=5, seconds=0.01, worker="n2:7", computed=False),  # committed already: a read, no encoding
    ]
    count_worker_encoding(stats, done, reused=5 + 4)  # shard c, and 4 texts of a shard the driver found committed
    throughput = task_throughput(before, stats, device="cpu", precision="fp32")
    assert (throughput["texts_encoded"], throughput["texts_cached"], throughput["tokens_encoded"]) == (16, 9, 160)
    assert throughput["encode_s"] == pytest.approx(3.0) and throughput["worker_encode_s"] == pytest.approx(3.0)
    assert throughput["texts_per_s"] == pytest.approx(16 / 3.0)
    assert throughput["encode_s_scope"] == WORKERS_SUMMED
    assert "encode_s_scope" not in task_throughput(before, before, device="cpu", precision="fp32")  # a local task


def toy_task(mirror: Path, folder: Path, n_docs: int = 60) -> tuple[Path, int, int]:
    """test_ray_backend's SciFact slice (``ToySciFact``); (specs folder, its documents, its queries)."""
    specs = toy_scifact(mirror, folder, n_docs)
    data = folder / "data"
    lines = [(data / name).read_text().splitlines() for name in ("corpus.jsonl", "queries.jsonl")]
    return specs, len(lines[0]), len(lines[1])


def throughput_of(results: Path) -> dict:
    (record,) = results.rglob("ToySciFact.run.json")
    return json.loads(record.read_text())["throughput"]


@pytest.mark.slow  # a local Ray cluster and three small runs (~40 s on 2 shared cores)
def test_ray_runs_count_worker_encoding_like_a_local_run(
    mirror: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ray = pytest.importorskip("ray")
    from evalkit.cli import main

    specs, n_docs, n_queries = toy_task(mirror, tmp_path)
    monkeypatch.setenv("EVALKIT_TASKS_PATH", str(specs))
    args = ["run", "--model", MODEL, "--tasks", "ToySciFact", "--quiet", "--no-cache", "--runtime", "torch"]
    assert main([*args, "--output", str(tmp_path / "local")]) == 0
    try:
        ray_args = [*args, "--backend", "ray", "--shard-dir", str(tmp_path / "shards"), "--shard-size", "16"]
        assert main([*ray_args, "--output", str(tmp_path / "ray")]) == 0
        assert main([*ray_args, "--output", str(tmp_path / "again")]) == 0
    finally:
        ray.shutdown()
    local, on_ray, again = (throughput_of(tmp_path / name) for name in ("local", "ray", "again"))
    assert local["texts_encoded"] == on_ray["texts_encoded"] == n_docs + n_queries  # SciFact's first texts: distinct
    assert on_ray["tokens_encoded"] == local["tokens_encoded"]  # unpadded: the same texts, the same tokens
    assert on_ray["encode_s_scope"] == WORKERS_SUMMED and 0 < on_ray["worker_encode_s"] < on_ray["encode_s"]
    assert on_ray["texts_per_s"] > 0 and "encode_s_scope" not in local
    # Every shard committed already: only the queries are encoded, the documents count as read, not encoded.
    assert (again["texts_encoded"], again["texts_cached"]) == (n_queries, n_docs)
    assert "encode_s_scope" not in again and again["tokens_encoded"] < local["tokens_encoded"]
