"""The machine's matrix-product rate, fp32 and bf16, at all-MiniLM-L6-v2's shapes and at large square ones.

The yardstick for ``bench_encode.py``: the share of this rate that a whole encoder reaches.

    .venv/bin/python benchmarks/bench_matmul_peak.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch
from _machine import machine_header, write_report

# (rows, inner, cols): a 4k-token batch through MiniLM's projections and feed-forward, and a large square product.
SHAPES = {"MiniLM attention projection": (4096, 384, 384), "MiniLM feed-forward": (4096, 384, 1536),
          "large square": (2048, 2048, 2048)}  # fmt: skip


def rate(m: int, k: int, n: int, dtype: torch.dtype, seconds: float = 3.0) -> float:
    a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
    for _ in range(3):
        a @ b
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        a @ b
        count += 1
    return 2 * m * k * n * count / (time.perf_counter() - started) / 1e9


def main() -> None:
    lines = ["# Matrix-product rate of this machine (torch, all threads)", "", machine_header(), "",
             f"threads: {torch.get_num_threads()}", "", "| shape (m×k·k×n) | fp32 GFLOP/s | bf16 GFLOP/s |",
             "| --- | ---: | ---: |"]  # fmt: skip
    for name, (m, k, n) in SHAPES.items():
        lines.append(
            f"| {name} {m}×{k}·{k}×{n} | {rate(m, k, n, torch.float32):.0f} | {rate(m, k, n, torch.bfloat16):.0f} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    print(f"written: {write_report('matmul_peak', text)}")


if __name__ == "__main__":
    main()
