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
