"""bf16 encoding against this host's bf16 matrix-product rate: which change brings evalkit closer to the limit.

One process, the packaged all-MiniLM-L6-v2, a slice of the SciFact corpus (title + text, as a retrieval run
encodes it). First the bf16 rate of MiniLM's own products (a 4k-token batch through the attention projections and
the feed-forward, ``F.linear`` with bf16 weights as the model runs them), then each candidate encodes the slice,
alternated A B C … A B C … for ``--rounds`` rounds (medians and spread), and its vectors are compared with the fp32
torch vectors:

- (a) evalkit's bf16 path as ``evalkit run --precision bf16`` builds it (weights cast to bf16 on a CPU, token
  budget 4096, batches padded to their longest text);
- (b) the same encoder with fp32 weights under ``torch.autocast(bfloat16)`` (the GPU path's way);
- (c) ``torch.compile`` (inductor, dynamic shapes) of the bf16 model, compile time reported apart (``--compile``:
  it takes ~40 s on 2 cores, longer than the quick run may);
- (d) batching: other token budgets, 32 texts per batch (as sentence-transformers), padding to multiples of 16/64;
- (e) OpenVINO with ``INFERENCE_PRECISION_HINT=bf16`` on evalkit's checked ONNX graph, run by ``--openvino-python``
  (a side virtual environment with openvino and numpy; OpenVINO is no dependency of evalkit). It gets the token
  ids batched as (a) batches them; the main process's tokenization time is added to its time, so rows compare.

GFLOP/s counts the model's matrix work on the real (unpadded) tokens (as ``bench_encode.py`` does). Timings on a
shared machine are skewed by other work: the report says how much CPU other processes took meanwhile.

    .venv/bin/python benchmarks/bench_bf16_limit.py [--max-docs 600] [--rounds 3] [--compile]
        [--openvino-python /tmp/ovenv/bin/python]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import torch
from _common import OtherCpu, activity_section, minilm_matmul_rate, other_activity
from _machine import machine_header, write_report
from bench_encode import corpus_texts, model_flops

ROOT = Path(__file__).resolve().parents[1]
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
# (rows, in, out, uses per layer): a 4k-token batch through MiniLM's q/k/v/o projections and feed-forward.

_OPENVINO_WORKER = r"""
import json, sys, time
import numpy as np
import openvino
data = np.load(sys.argv[1])
started = time.perf_counter()
compiled = openvino.Core().compile_model(sys.argv[2], "CPU", {"INFERENCE_PRECISION_HINT": "bf16",
                                         "INFERENCE_NUM_THREADS": int(sys.argv[3])})
compile_s = time.perf_counter() - started
names = [port.get_any_name() for port in compiled.inputs]
batches = [(data[f"ids{i}"], data[f"mask{i}"]) for i in range(int(data["count"]))]
def run():
    out = []
    for ids, mask in batches:
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = np.asarray(compiled({name: feeds[name] for name in names})[0], dtype=np.float32)
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(1) / np.maximum(weights.sum(1), 1e-9)
        out.append(pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12))
    return np.concatenate(out)
run()
started = time.perf_counter()
vectors = run()
seconds = time.perf_counter() - started
np.save(sys.argv[4], vectors)
print(json.dumps({"seconds": seconds, "compile_s": compile_s}))
"""


def bf16_matmul_rate(seconds: float = 0.7) -> tuple[float, dict[str, float]]:
    """GFLOP/s of each MiniLM product in bf16, and of one layer's mix (total work over total time)."""
    return minilm_matmul_rate(torch.bfloat16, seconds)


@contextlib.contextmanager
def padded_to(multiple: int) -> Iterator[None]:
    """Batches padded to a multiple of ``multiple`` tokens (masked), instead of to their longest text."""
    from evalkit.encoders import hf

    original = hf.padded_batch

    def padded(token_ids: list[list[int]], pad_id: int, side: str = "right") -> tuple[torch.Tensor, torch.Tensor]:
        input_ids, mask = original(token_ids, pad_id, side)
        extra = -input_ids.shape[1] % multiple
        if extra:
            input_ids = torch.nn.functional.pad(input_ids, (0, extra), value=pad_id)
            mask = torch.nn.functional.pad(mask, (0, extra), value=0)
        return input_ids, mask

    hf.padded_batch = padded
    try:
        yield
    finally:
        hf.padded_batch = original


def encoder_with(precision: str, model: torch.nn.Module | None = None, autocast: bool = False) -> object:
    """An encoder as ``evalkit run`` builds it, optionally running another model object (autocast, compiled)."""
    from evalkit.encoders import load_encoder
    from evalkit.registry.models import resolve_model

    encoder = load_encoder(resolve_model(MODEL), precision=precision, runtime="torch")
    if model is not None:
        encoder.__dict__["model"] = model
    encoder._autocast = autocast
    return encoder


def core_encode(encoder: object, texts: list[str], budget: int | None = None, batch_size: int | None = None,
                pad_multiple: int = 1) -> Callable[[], np.ndarray]:  # fmt: skip
    """The core as ``evalkit run`` builds it (its default budget for the precision), or with other batching."""
    from evalkit.core import EmbeddingCore
    from evalkit.runner import default_token_budget

    budget = budget or default_token_budget("cpu", encoder.precision)
    core = EmbeddingCore(show_progress=False, token_budget=budget, batch_size=batch_size)

    def run() -> np.ndarray:
        with padded_to(pad_multiple) if pad_multiple > 1 else contextlib.nullcontext():
            return core.encode(encoder, texts, "document")

    return run


def compiled_candidate(texts: list[str]) -> tuple[Callable[[], np.ndarray], float]:
    """torch.compile (inductor, dynamic shapes) of the bf16 model; the compile time is the first batch's."""
    encoder = encoder_with("bf16")
    encoder.__dict__["model"] = torch.compile(encoder.model, dynamic=True)
    started = time.perf_counter()
    encoder.embed_batch(encoder.tokenize(texts[:8]))
    return core_encode(encoder, texts), time.perf_counter() - started


def openvino_candidate(texts: list[str], python: str, workdir: Path) -> tuple[Callable[[], np.ndarray], float]:
    """OpenVINO bf16 in a side interpreter, on the batches (a) makes; returns the runner and the compile time."""
    from evalkit.core.batching import token_budget_batches
    from evalkit.encoders.hf import padded_batch

    onnx = encoder_with("fp32")
    onnx.runtime = "onnx"
    graph = str(onnx._onnx_forward.path)
    started = time.perf_counter()
    token_ids = onnx.tokenize(onnx.prepare(texts, ""))
    tokenize_s = time.perf_counter() - started
    lengths = np.array([len(ids) for ids in token_ids])
    batches = token_budget_batches(lengths, 4096, 256)
    arrays: dict[str, np.ndarray] = {"count": np.array(len(batches))}
    for i, batch in enumerate(batches):
        ids, mask = padded_batch([token_ids[j] for j in batch], onnx._pad_id)
        arrays[f"ids{i}"], arrays[f"mask{i}"] = ids.numpy(), mask.numpy()
    np.savez(workdir / "batches.npz", **arrays)
    order = np.concatenate(batches)
    compile_times: list[float] = []

    def run() -> np.ndarray:
        out = workdir / "vectors.npy"
        argv = [python, "-c", _OPENVINO_WORKER, str(workdir / "batches.npz"), graph, str(torch.get_num_threads())]
        done = subprocess.run([*argv, str(out)], capture_output=True, text=True, check=True)
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        compile_times.append(figures["compile_s"])
        run.seconds = figures["seconds"] + tokenize_s  # type: ignore[attr-defined]
        vectors = np.empty((len(texts), 384), dtype=np.float32)
        vectors[order] = np.load(out)
        return vectors

    run()
    return run, compile_times[0]


def build_candidates(texts: list[str], args: argparse.Namespace, workdir: Path) -> tuple[dict, dict[str, float]]:
    """Name → encode function, and the one-off set-up time (compile) of those that have one."""
    from transformers import AutoModel

    from evalkit.encoders.hf import load_weights

    bf16 = encoder_with("bf16")
    fp32_model = load_weights(AutoModel, bf16.spec.local_path, bf16._config).eval()
    candidates = {
        "(a) evalkit bf16 (cast weights, budget 4096)": core_encode(bf16, texts),
        "(b) autocast bf16, fp32 weights": core_encode(encoder_with("bf16", fp32_model, autocast=True), texts),
        "(d) budget 2048": core_encode(bf16, texts, budget=2048),
        "(d) budget 8192": core_encode(bf16, texts, budget=8192),
        "(d) 32 texts per batch (as sentence-transformers)": core_encode(bf16, texts, batch_size=32),
        "(d) pad to multiple of 16": core_encode(bf16, texts, pad_multiple=16),
        "(d) pad to multiple of 64": core_encode(bf16, texts, pad_multiple=64),
    }
    setup: dict[str, float] = {}
    if args.compile:
        name = "(c) torch.compile bf16 (inductor, dynamic)"
        candidates[name], setup[name] = compiled_candidate(texts)
    if args.openvino_python and Path(args.openvino_python).exists():
        name = "(e) OpenVINO bf16 hint (side venv)"
        candidates[name], setup[name] = openvino_candidate(texts, args.openvino_python, workdir)
    return candidates, setup


def measure(candidates: dict, rounds: int, rates: list[float]) -> tuple[dict[str, list[float]], dict]:
    """Each candidate once per round, in turn (A B C … A B C …), after the matmul rate (appended to ``rates``):
    the host's rate drifts with other work. The last round's vectors are kept."""
    times: dict[str, list[float]] = {name: [] for name in candidates}
    vectors: dict[str, np.ndarray] = {}
    for round_ in range(rounds):
        print(f"round {round_ + 1}/{rounds}", file=sys.stderr, flush=True)
        rates.append(bf16_matmul_rate()[0])
        for name, run in candidates.items():
            started = time.perf_counter()
            vectors[name] = run()
            times[name].append(getattr(run, "seconds", time.perf_counter() - started))
    return times, vectors


def agreement(vectors: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """Minimum cosine and maximum absolute difference against the fp32 vectors."""
    a, b = vectors.astype(np.float64), reference.astype(np.float64)
    cosine = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return float(cosine.min()), float(np.abs(a - b).max())


def table(times: dict, vectors: dict, reference: np.ndarray, flops: float, rate: float) -> list[str]:
    lines = [
        "| candidate | median s | spread s | GFLOP/s | % of bf16 matmul | vs (a) | min cosine vs fp32 | max abs diff |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    base = float(np.median(next(iter(times.values()))))
    for name, seconds in times.items():
        median = float(np.median(seconds))
        min_cos, max_diff = agreement(vectors[name], reference)
        lines.append(
            f"| {name} | {median:.2f} | {min(seconds):.2f}–{max(seconds):.2f} | {flops / median / 1e9:.0f} | "
            f"{flops / median / 1e9 / rate:.0%} | {base / median:.2f}× | {min_cos:.6f} | {max_diff:.2e} |"
        )
    return lines


def report(args: argparse.Namespace, texts: list[str], results: dict) -> str:
    rates, per_shape = results["rates"], results["per_shape"]
    rate = max(rates)  # the host's limit: its best measurement (other work only ever lowers a rate)
    lines = [
        f"# bf16 encoding at the bf16 matmul limit: {len(texts):,} SciFact documents, {args.rounds} round(s)",
        "",
        results["header"],
        "",
        f"bf16 matmul rate on MiniLM's shapes (torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"F.linear, one layer's mix): {' / '.join(f'{r:.0f}' for r in rates)} GFLOP/s (before, each round, after "
        f"the candidates); the best, {rate:.0f}, is the yardstick. Per shape (before): "
        + ", ".join(f"{shape} {value:.0f}" for shape, value in per_shape.items())
        + ".",
        "",
        f"Model work: {results['flops'] / 1e9:.0f} GFLOP (unpadded tokens, truncation at 256). fp32 torch "
        f"(evalkit, budget 4096) took {results['fp32_s']:.2f} s ({results['flops'] / results['fp32_s'] / 1e9:.0f} "
        "GFLOP/s); its vectors are the reference.",
        "",
        *table(results["times"], results["vectors"], results["reference"], results["flops"], rate),
        "",
    ]
    for name, seconds in results["setup"].items():
        lines.append(f"- set-up of {name}: {seconds:.1f} s (compile; not in the timings above)")
    lines += ["", *activity_section(results["others"], results["before"])]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", type=Path, default=ROOT / "../shared/data/tasks")
    parser.add_argument("--max-docs", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--compile", action="store_true", help="also torch.compile (about 40 s to compile)")
    parser.add_argument("--openvino-python", default="/tmp/ovenv/bin/python", help="a python with openvino")
    args = parser.parse_args()

    header, before = machine_header(), other_activity()
    texts = corpus_texts(args.data_dir, args.max_docs)
    results: dict = {"header": header, "before": before}
    with OtherCpu() as others, tempfile.TemporaryDirectory() as workdir:
        rate_before, results["per_shape"] = bf16_matmul_rate()
        fp32 = encoder_with("fp32")
        results["flops"] = model_flops(texts, fp32.tokenizer, fp32._config, fp32.spec.max_length)
        started = time.perf_counter()
        results["reference"] = core_encode(fp32, texts)()
        results["fp32_s"] = time.perf_counter() - started
        candidates, results["setup"] = build_candidates(texts, args, Path(workdir))
        results["rates"] = [rate_before]
        results["times"], results["vectors"] = measure(candidates, args.rounds, results["rates"])
        results["rates"].append(bf16_matmul_rate()[0])
    results["others"] = others
    text = report(args, texts, results)
    print(text)
    print(f"written: {write_report('bf16_limit', text)}")


if __name__ == "__main__":
    main()
