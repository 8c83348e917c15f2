"""``benchmarks/gpu_check.py`` cannot rot before a device is lent: its dry mode runs every section on the CPU.

The dry run is a whole process on tiny slices of the real SciFact and STSBenchmark; it must finish, print every
section, write the same markdown to ``--output``, and pass every check it counts (the cache, the out-of-memory
back-off, replicas). The score tolerances are shown but not counted on slices that small.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"
SECTIONS = (
    "# GPU check: sentence-transformers/all-MiniLM-L6-v2 on SciFact, STSBenchmark (DRY RUN on CPU, tiny slices)",
    "## Machine",
    "## Throughput",
    "## Tokenization",
    "## Scores against CPU fp32 (CPU fp32 computed now on this host's CPU)",
    "## Cache on the device",
    "## Out-of-memory back-off",
    "## Two replicas on one device against one",
    "## Verdict",
)

COUNTED_ON_A_CPU = (
    "second run encodes nothing",
    "cached scores equal the computed ones",
    "injected out-of-memory: batches halved, vectors kept",
    "two replicas give the same vectors",
)


def _gpu_check():
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules.setdefault("gpu_check", module)  # its dataclasses look their module up by name
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(SCRIPT.parent))


def test_the_peak_table_knows_h100_and_h200_and_measures_anything_else() -> None:
    known_peak = _gpu_check().known_peak
    assert known_peak("NVIDIA H100 80GB HBM3") == 989.0
    assert known_peak("NVIDIA H100 PCIe") == 756.0
    assert known_peak("NVIDIA H200") == 989.0
    assert known_peak("NVIDIA H100 NVL") is None and known_peak("NVIDIA A100-SXM4-80GB") is None


@pytest.mark.slow
def test_the_dry_run_executes_every_section(mirror: Path, tmp_path: Path) -> None:
    output = tmp_path / "gpu_check.md"
    env = {**os.environ, "EVALKIT_CACHE_DIR": str(tmp_path / "cache"), "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--dry", "--data-dir", str(mirror), "--output", str(output)],
        capture_output=True, text=True, env=env, timeout=900, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = done.stdout.splitlines()
    for heading in SECTIONS:  # each heading once, in this order (some go on with their sizes)
        assert sum(line.startswith(heading) for line in lines) == 1, heading
    found = [next(i for i, line in enumerate(lines) if line.startswith(heading)) for heading in SECTIONS]
    assert found == sorted(found)
    assert "**FAIL**" not in done.stdout
    assert "- every counted check passed" in lines
    for check in COUNTED_ON_A_CPU:
        assert f"- {check}: **PASS**" in done.stdout, check
    assert any(line.startswith("| fp32 | ") for line in lines) and any(line.startswith("| bf16 | ") for line in lines)
    assert output.read_text(encoding="utf-8") == done.stdout  # the markdown, as printed
