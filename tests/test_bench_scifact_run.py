"""The whole-run SciFact benchmark's dry mode (a slice of SciFact, one round, whole processes), run as CI runs it, so
the benchmark the integrator times cannot rot: every side ran, each has a median, the report names the host's matmul
rates, and every nDCG@10 is a real score."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "bench_scifact_run.py"


def _bench() -> ModuleType:
    """The benchmark as a module (it puts benchmarks/ on sys.path for its helpers; taken off again here)."""
    saved = list(sys.path)
    try:
        spec = importlib.util.spec_from_file_location("bench_scifact_run", SCRIPT)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path[:] = saved


def test_slice_keeps_only_queries_judged_inside_the_slice(mirror: Path, tmp_path: Path) -> None:
    sliced = _bench().slice_scifact(mirror, tmp_path, max_docs=150) / "SciFact"
    doc_ids = {json.loads(line)["_id"] for line in (sliced / "corpus.jsonl").read_text().splitlines()}
    rows = [line.split("\t") for line in (sliced / "qrels" / "test.tsv").read_text().splitlines()[1:]]
    query_ids = {json.loads(line)["_id"] for line in (sliced / "queries.jsonl").read_text().splitlines()}
    assert len(doc_ids) == 150
    assert 1 <= len(query_ids) <= 15
    assert {row[0] for row in rows} == query_ids
    assert {row[1] for row in rows} <= doc_ids


@pytest.mark.slow
def test_dry_run_reports_every_side_with_medians_rates_and_scores(mirror: Path, tmp_path: Path) -> None:
    out = tmp_path / "scifact_run.md"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--dry", "--data-dir", str(mirror),
         "--out", str(out)],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    text = out.read_text(encoding="utf-8")
    assert f"written: {out}" in done.stdout  # --out: reports/bench/ is left alone
    table = [line.split("|") for line in text.splitlines() if re.match(r"\| [ABCD] \|", line)]
    rows = {cells[1].strip(): cells for cells in table}
    assert sorted(rows) == ["A", "B", "C"]  # dry: mteb (D) off
    for cells in rows.values():
        assert re.fullmatch(r" [\d.]+ \([\d.]+–[\d.]+\) ", cells[3])  # wall median (min–max)
        assert cells[5].strip() == "1"
        for score in cells[6].split("/"):
            assert 0.0 <= float(score) <= 1.0
    rates = re.search(r"best: fp32 torch (\d+), fp32 MLAS (\w+), bf16 torch (\d+)", text)
    assert rates is not None and float(rates.group(1)) > 0 and float(rates.group(3)) > 0
    assert "before round 1" in text and "after round 1" in text
    assert re.search(r"runtime auto chose .*fp32 (torch|onnx|openvino) ", text)
    assert "bf16 whole run ≥3×" in text and "within 0.002 of fp32" in text
