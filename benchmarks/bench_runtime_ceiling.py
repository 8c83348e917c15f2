"""How close OpenVINO's forward pass is to the host's matmul rate, and what issue 17's speed-up targets ask of it here.

Issue 17 asks fp32 encoding ≥1.5× sentence-transformers' ``encode`` and a bf16 SciFact run ≥3× the plain
sentence-transformers script's fp32. Both are ratios to torch's own speed, which is a share of the host's matmul rate
that differs by host; so this benchmark states, on the host it runs on, the share of the matmul yardstick each target
needs and the share OpenVINO's forward pass reaches, with nothing else in the timing (no tokenization, pooling or
cache): the ceiling of any encoder built on it.

One process: the packaged all-MiniLM-L6-v2 on SciFact's first ``--max-docs`` documents (title + text, truncation at
256, as a run encodes them). Per round, in turn: sentence-transformers ``encode`` (fp32, batch 32, its defaults,
tokenization included: the side the targets divide by), then OpenVINO's compiled graph (the checked export evalkit
runs) in fp32 and in bf16 on the token-budget batches evalkit's core makes, for each ``--budgets``. Medians and
min-max over ``--rounds``. GFLOP/s counts the model's matrix work on the real (unpadded) tokens, as bench_encode.py
does; the yardstick is the best reading of torch's and ONNX Runtime's GEMM on MiniLM's shapes (``_common``). Last, a
per-operation profile of one 8 × 256 batch (OpenVINO's ``PERF_COUNT``): where the forward's time goes.

    .venv/bin/python benchmarks/bench_runtime_ceiling.py [--max-docs 600] [--rounds 2] [--budgets 1024 4096 8192]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from _common import OtherCpu, activity_section, matmul_rate_lines, matmul_rates, other_activity
from _machine import machine_header, write_report

ROOT = Path(__file__).resolve().parents[1]
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
D_MODEL, D_FF, LAYERS = 384, 1536, 6
FP32_TARGET, BF16_RUN_TARGET = 1.5, 3.0


def model_gflop(lengths: np.ndarray) -> float:
    """MiniLM's matrix work on these unpadded lengths: projections, feed-forward and attention, every layer."""
    per_token = 2 * (4 * D_MODEL * D_MODEL + 2 * D_MODEL * D_FF)
    return float(sum(LAYERS * (per_token * n + 4 * n * n * D_MODEL) for n in lengths)) / 1e9


def scifact_texts(data_dir: Path, count: int) -> list[str]:
    texts = []
    with (data_dir / "SciFact" / "corpus.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            doc = json.loads(line)
            texts.append((doc.get("title", "") + " " + doc["text"]).strip())
            if len(texts) == count:
                break
    return texts


class Graph:
    """The exported, checked graph compiled by OpenVINO in one precision, fed evalkit's core batches."""

    def __init__(self, path: Path, precision: str, threads: int, profile: bool = False) -> None:
        import openvino

        hint = {"fp32": openvino.Type.f32, "bf16": openvino.Type.bf16}[precision]
        config = {"INFERENCE_PRECISION_HINT": hint, "INFERENCE_NUM_THREADS": threads, "PERF_COUNT": profile}
        self.compiled = openvino.Core().compile_model(str(path), "CPU", config)
        self.names = [port.get_any_name() for port in self.compiled.inputs]

    def feeds(self, ids: list[list[int]]) -> dict[str, np.ndarray]:
        width = max(map(len, ids))
        input_ids = np.zeros((len(ids), width), dtype=np.int64)
        mask = np.zeros_like(input_ids)
        for row, tokens in enumerate(ids):
            input_ids[row, : len(tokens)], mask[row, : len(tokens)] = tokens, 1
        every = {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": np.zeros_like(input_ids)}
        return {name: every[name] for name in self.names}

    def seconds(self, batches: list[dict[str, np.ndarray]]) -> float:
        started = time.perf_counter()
        for feeds in batches:
            self.compiled(feeds)
        return time.perf_counter() - started


def profile_shares(graph: Graph, feeds: dict[str, np.ndarray], repeats: int = 10) -> list[tuple[str, float]]:
    """Share of the forward's time per (operation, kernel), summed over ``repeats`` calls after three untimed."""
    request = graph.compiled.create_infer_request()
    for _ in range(3):
        request.infer(feeds)
    spent: collections.Counter[str] = collections.Counter()
    for _ in range(repeats):
        request.infer(feeds)
        for node in request.get_profiling_info():
            spent[f"{node.node_type} ({node.exec_type})"] += node.real_time.total_seconds()
    total = sum(spent.values()) or 1.0
    return [(name, value / total) for name, value in spent.most_common(6)]


def _stats(values: list[float]) -> str:
    return f"{statistics.median(values):.0f} ({min(values):.0f}–{max(values):.0f})"


def measure(args: argparse.Namespace, tmp: Path) -> dict:
    import torch
    from sentence_transformers import SentenceTransformer

    from evalkit.core.batching import token_budget_batches
    from evalkit.encoders import load_encoder
    from evalkit.registry.models import resolve_model

    threads = torch.get_num_threads()
    texts = scifact_texts(args.data_dir, args.max_docs)
    encoder = load_encoder(resolve_model(MODEL), precision="fp32", runtime="onnx", artifact_dir=tmp)
    ids = encoder.tokenize(encoder.prepare(texts, ""))
    lengths = np.array([len(t) for t in ids])
    gflop = model_gflop(lengths)
    graphs = {p: Graph(encoder._onnx_forward.path, p, threads) for p in ("fp32", "bf16")}  # the checked export
    batches = {
        b: [graphs["fp32"].feeds([ids[i] for i in rows]) for rows in token_budget_batches(lengths, b, 256)]
        for b in args.budgets
    }
    sentence_transformer = SentenceTransformer(str(resolve_model(MODEL).local_path), device="cpu")
    sentence_transformer.encode(texts[:32], batch_size=32)
    for graph in graphs.values():
        graph.seconds(batches[args.budgets[0]][:2])
    rates: dict[str, list[float]] = collections.defaultdict(list)
    readings = [("before round 1", matmul_rates())]
    for round_number in range(1, args.rounds + 1):
        started = time.perf_counter()
        sentence_transformer.encode(texts, batch_size=32)
        rates["st"].append(gflop / (time.perf_counter() - started))
        for precision, graph in graphs.items():
            for budget in args.budgets:
                rates[f"{precision}/{budget}"].append(gflop / graph.seconds(batches[budget]))
        readings.append((f"after round {round_number}", matmul_rates()))
    rng = np.random.default_rng(0)
    one = {"input_ids": rng.integers(1000, 20000, (8, 256)).astype(np.int64)}
    one.update(attention_mask=np.ones_like(one["input_ids"]), token_type_ids=np.zeros_like(one["input_ids"]))
    profiles = {}
    for precision in graphs:
        graph = Graph(encoder._onnx_forward.path, precision, threads, profile=True)
        profiles[precision] = profile_shares(graph, {name: one[name] for name in graph.names})
    padded = {b: sum(f["input_ids"].size for f in batches[b]) / lengths.sum() for b in args.budgets}
    return {"rates": rates, "readings": readings, "profiles": profiles, "gflop": gflop, "lengths": lengths,
            "padded": padded, "threads": threads}  # fmt: skip


def yardsticks(readings: list[tuple[str, dict]]) -> tuple[float, float]:
    """The best fp32 reading of torch's or MLAS's GEMM, and the best bf16 one: other work only lowers a reading."""
    fp32 = max(max(r.get("fp32 torch") or 0, r.get("fp32 MLAS") or 0) for _, r in readings)
    return fp32, max(r.get("bf16 torch") or 0 for _, r in readings)


def report(args: argparse.Namespace, found: dict, header: str) -> list[str]:
    fp32_peak, bf16_peak = yardsticks(found["readings"])
    rates, st = found["rates"], statistics.median(found["rates"]["st"])
    best = {p: max(statistics.median(rates[f"{p}/{b}"]) for b in args.budgets) for p in ("fp32", "bf16")}
    lines = [
        "# OpenVINO's forward pass against the host's matmul rate: the ceiling of issue 17's speed-up targets",
        "",
        header,
        "",
        f"SciFact's first {len(found['lengths'])} documents, {int(found['lengths'].sum())} tokens "
        f"({found['gflop']:.0f} GFLOP of model work), {found['threads']} threads, {args.rounds} round(s) "
        "(sentence-transformers, then each OpenVINO setting, in turn).",
        "",
        *matmul_rate_lines(found["readings"]),
        "",
        f"Yardsticks (best reading): fp32 {fp32_peak:.0f} GFLOP/s, bf16 {bf16_peak:.0f} GFLOP/s.",
        "",
        "| side | GFLOP/s median (min–max) | share of its precision's yardstick | padded / real tokens |",
        "| --- | ---: | ---: | ---: |",
        f"| sentence-transformers encode fp32 (batch 32, tokenization included) | {_stats(rates['st'])} | "
        f"{st / fp32_peak:.0%} | — |",
    ]
    for precision, peak in (("fp32", fp32_peak), ("bf16", bf16_peak)):
        for budget in args.budgets:
            values = rates[f"{precision}/{budget}"]
            lines.append(f"| OpenVINO {precision} forward alone, token budget {budget} | {_stats(values)} | "
                         f"{statistics.median(values) / peak:.0%} | {found['padded'][budget]:.3f} |")  # fmt: skip
    lines += [
        "",
        "## What the targets ask on this host",
        "",
        f"- fp32 ≥{FP32_TARGET}× sentence-transformers' encode: ≥{FP32_TARGET * st:.0f} GFLOP/s = "
        f"{FP32_TARGET * st / fp32_peak:.0%} of the fp32 yardstick for the whole encode (forward, tokenization, "
        f"pooling); OpenVINO's forward alone, best budget: {best['fp32']:.0f} GFLOP/s = "
        f"{best['fp32'] / fp32_peak:.0%}, {best['fp32'] / st:.2f}× sentence-transformers.",
        f"- bf16 run ≥{BF16_RUN_TARGET}× the script's fp32: its encoding alone ≥{BF16_RUN_TARGET * st:.0f} GFLOP/s = "
        f"{BF16_RUN_TARGET * st / bf16_peak:.0%} of the bf16 yardstick, before start-up, search and scoring; "
        f"OpenVINO's bf16 forward alone, best budget: {best['bf16']:.0f} GFLOP/s = {best['bf16'] / bf16_peak:.0%}, "
        f"{best['bf16'] / st:.2f}× sentence-transformers' fp32.",
        f"- bf16/fp32 yardstick ratio on this host: {bf16_peak / fp32_peak:.2f} (issue 17 saw 404 and 930 GFLOP/s bf16 "
        "on VMs of one kind: the 3× target is within reach where bf16 is ~4× fp32, not where it is ~2×).",
        "",
        "## Where the forward's time goes (one 8 × 256 batch, OpenVINO PERF_COUNT, 10 calls)",
        "",
    ]
    for precision, shares in found["profiles"].items():
        lines.append(f"- {precision}: " + ", ".join(f"{name} {share:.1%}" for name, share in shares))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data" / "tasks")
    parser.add_argument("--max-docs", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--budgets", type=int, nargs="+", default=[1024, 4096, 8192])
    parser.add_argument("--out", type=Path, default=None, help="write here instead of reports/bench/")
    args = parser.parse_args()
    header, before = machine_header(), other_activity()
    with tempfile.TemporaryDirectory() as tmp, OtherCpu() as others:
        found = measure(args, Path(tmp))
    text = "\n".join([*report(args, found, header), "", *activity_section(others, before)]) + "\n"
    print(text)
    if args.out is not None:
        args.out.write_text(text, encoding="utf-8")
    else:
        print(f"written: {write_report('runtime_ceiling', text)}")


if __name__ == "__main__":
    main()
