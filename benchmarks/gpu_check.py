"""One prepared GPU check of the packaged all-MiniLM-L6-v2 on SciFact and STSBenchmark, in under 5 minutes on one
H100/H200: throughput per precision, tokenization, scores against CPU fp32, the cache, the out-of-memory back-off,
and two replicas on one device against one. Every step is an evalkit library call (``evalkit.runner.run``, the
``EmbeddingCore``, ``build_encoder``), not a reimplementation.

    .venv/bin/python benchmarks/gpu_check.py --output reports/bench/gpu_check_device.md     # on a GPU machine
    .venv/bin/python benchmarks/gpu_check.py --dry                                           # CPU, tiny slices

``--dry`` (automatic without CUDA) runs the same code on the CPU on tiny slices of the same data in seconds, so CI
runs it (tests/test_gpu_check.py) and the script cannot rot before a device is lent. The CPU fp32 reference scores
are, on a device, the committed ones (``results/sentence-transformers__all-MiniLM-L6-v2/<revision>/``: full
SciFact and STSBenchmark, computed on a CPU in fp32), because recomputing SciFact on the host CPU would take a large
share of the 5 minutes; ``--cpu-reference compute`` recomputes them instead. A dry run always computes them (its
slices are not the committed data). Exit status: 0 when every counted check passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(REPO))

from _gpu_check_data import committed_reference, task_texts, tiny_mirror  # noqa: E402

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
TASKS = ("SciFact", "STSBenchmark")
PEAK_BF16_TFLOPS = (("H200", "", 989.0), ("H100", "PCIe", 756.0), ("H100", "SXM", 989.0), ("H100", "HBM3", 989.0))
"""(name part, second part, dense bf16 TFLOP/s) by device name; an H100 named neither PCIe nor SXM/HBM3 is measured."""
SCORE_TOLERANCE = 0.002
ROUNDS = 2


@dataclass
class Plan:
    device: str
    dry: bool
    data_dir: Path
    work: Path
    precisions: tuple[str, ...]
    docs: int | None  # corpus texts timed (None: all)
    reference: str  # committed | compute
    lines: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def say(self, line: str = "") -> None:
        self.lines.append(line)
        print(line, flush=True)

    def check(self, name: str, ok: bool, detail: str, *, counted: bool = True) -> None:
        """A PASS/FAIL line; an uncounted one (a tolerance on a dry run's tiny slice) is shown but does not fail."""
        verdict = "PASS" if ok else ("FAIL" if counted else "n/a (tiny slice)")
        self.say(f"- {name}: **{verdict}** ({detail})")
        if counted and not ok:
            self.failures.append(name)


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(device: str, work: Callable[[], Any]) -> tuple[float, Any]:
    _sync(device)
    start = time.perf_counter()
    result = work()
    _sync(device)
    return time.perf_counter() - start, result


def matmul_rate(device: str, dry: bool) -> float:
    """bf16 TFLOP/s of a square ``torch.matmul`` on the device: the quick probe for a device not in the table."""
    import torch

    size, seconds = (512, 0.3) if dry else (8192, 1.0)
    a = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    b = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    count = 0
    _sync(device)
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        count += 1
    _sync(device)
    elapsed = time.perf_counter() - start
    return 2 * size**3 * count / elapsed / 1e12


def known_peak(device_name: str) -> float | None:
    """The dense bf16 TFLOP/s of a device by its CUDA name (``NVIDIA H100 80GB HBM3``), None when not in the table."""
    return next((peak for a, b, peak in PEAK_BF16_TFLOPS if a in device_name and b in device_name), None)


def machine_section(plan: Plan) -> float:
    """The device, its bf16 dense peak (table or measured) and the measured matmul rate; returns the peak used."""
    import torch

    plan.say("## Machine")
    name = torch.cuda.get_device_name(0) if plan.device.startswith("cuda") else "CPU (dry run)"
    table = known_peak(name)
    measured = matmul_rate(plan.device, plan.dry)
    plan.say(f"- device: {name}; torch {torch.__version__}, CUDA {torch.version.cuda}")
    plan.say(f"- measured bf16 matmul rate: {measured:.3g} TFLOP/s")
    peak = table if table is not None else measured
    source = "known dense bf16 peak of this device" if table else "not in the table: the measured rate is the peak"
    plan.say(f"- bf16 peak used for percentages: {peak:.3g} TFLOP/s ({source})")
    if table:
        plan.say(f"- measured matmul rate is {100 * measured / table:.0f}% of the table's peak")
    return peak


def model_flops(encoder: Any, token_ids: list[list[int]]) -> float:
    """Forward FLOPs on the real (unpadded) tokens: 2 × linear weights per token, plus attention's two products."""
    config = encoder._config
    layers, hidden, inner = config.num_hidden_layers, config.hidden_size, config.intermediate_size
    linear = layers * (4 * hidden * hidden + 2 * hidden * inner)
    tokens = sum(len(ids) for ids in token_ids)
    attention = sum(4 * layers * hidden * len(ids) ** 2 for ids in token_ids)
    return 2.0 * linear * tokens + attention


def _encoder(plan: Plan, precision: str, device: str | None = None) -> Any:
    from evalkit.encoders import build_encoder
    from evalkit.encoders.adapters import Encoding
    from evalkit.registry.models import resolve_model

    runtime = "torch" if plan.dry else "auto"  # on a GPU auto is torch; a dry run skips the CPU runtime probe
    return build_encoder(resolve_model(MODEL), Encoding(device or plan.device, precision, runtime))


def _core(plan: Plan, **kwargs: Any) -> Any:
    from evalkit.core import EmbeddingCore
    from evalkit.pipeline.models import default_token_budget

    budget = kwargs.pop("token_budget", default_token_budget(plan.device))
    return EmbeddingCore(token_budget=budget, show_progress=False, **kwargs)


def throughput_section(plan: Plan, texts: list[str], peak: float) -> dict[str, float]:
    """Texts/s, tokens/s and % of peak per precision, end to end (the core: dedup, tokenize in its background
    thread, batches) and forward only (pre-tokenized); precisions alternated A B C A B C, medians reported."""
    plan.say("")
    plan.say(f"## Throughput ({len(texts)} SciFact documents, no cache; median of {ROUNDS} alternated rounds)")
    plan.say("| precision | texts/s | tokens/s | forward-only tokens/s | model TFLOP/s | % of bf16 peak |")
    plan.say("| --- | ---: | ---: | ---: | ---: | ---: |")
    encoders = {precision: _encoder(plan, precision) for precision in plan.precisions}
    token_ids = encoders[plan.precisions[0]].tokenize(texts)
    flops = model_flops(encoders[plan.precisions[0]], token_ids)
    tokens = sum(map(len, token_ids))
    end_to_end: dict[str, list[float]] = {p: [] for p in plan.precisions}
    forward: dict[str, list[float]] = {p: [] for p in plan.precisions}
    for encoder in encoders.values():  # warm-up: weights loaded, kernels chosen
        _core(plan).encode(encoder, texts[:64], "document")
    for _ in range(ROUNDS):
        for precision, encoder in encoders.items():
            core = _core(plan)
            end_to_end[precision].append(timed(plan.device, partial(core.encode, encoder, texts, "document"))[0])
            batches = core.plan_batches(token_ids)
            forward[precision].append(timed(plan.device, partial(core.encode_planned, encoder, token_ids, batches))[0])
    rates = {}
    for precision in plan.precisions:
        seconds, forward_s = statistics.median(end_to_end[precision]), statistics.median(forward[precision])
        rates[precision] = tokens / forward_s
        tflops = flops / forward_s / 1e12
        plan.say(
            f"| {precision} | {len(texts) / seconds:,.0f} | {tokens / seconds:,.0f} | {tokens / forward_s:,.0f} "
            f"| {tflops:.3g} | {100 * tflops / peak:.1f}% |"
        )
    plan.say(f"\nModel work: {flops / 1e12:.3f} TFLOP over {tokens:,} real tokens (padding not counted).")
    if "fp16" not in plan.precisions:
        plan.say("fp16 is not run on a CPU (evalkit refuses it there); a device run adds it.")
    return rates


def tokenization_section(plan: Plan, texts: list[str], forward_rates: dict[str, float]) -> None:
    """Tokenizer tokens/s as the core calls it (one call per chunk, in one background thread) and split over a
    thread pool; it bounds the device when it is slower than the fastest precision's forward pass."""
    import os

    plan.say("")
    plan.say("## Tokenization")
    encoder = _encoder(plan, "fp32")
    tokens = sum(map(len, encoder.tokenize(texts)))
    one = statistics.median(timed("cpu", partial(encoder.tokenize, texts))[0] for _ in range(ROUNDS))
    workers = max(2, min(8, os.cpu_count() or 2))
    parts = [texts[i::workers] for i in range(workers)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pooled = statistics.median(
            timed("cpu", lambda: list(pool.map(encoder.tokenize, parts)))[0] for _ in range(ROUNDS)
        )
    fastest = max(forward_rates, key=forward_rates.get)  # type: ignore[arg-type]
    plan.say(f"- as the core calls it (one call per chunk): {tokens / one:,.0f} tokens/s")
    plan.say(f"- split over {workers} threads: {tokens / pooled:,.0f} tokens/s")
    plan.say(f"- fastest forward pass ({fastest}): {forward_rates[fastest]:,.0f} tokens/s")
    best = max(tokens / one, tokens / pooled)
    plan.check(
        "tokenization does not bound the device",
        best >= forward_rates[fastest],
        f"the core tokenizes the next chunk while the device encodes this one; best tokenizer rate "
        f"{best / forward_rates[fastest]:.2f}× the {fastest} forward rate",
        counted=not plan.dry,
    )


def run_tasks(plan: Plan, device: str, precision: str, **options: Any) -> tuple[dict[str, float], Any]:
    """Main score per task from ``evalkit.runner.run`` (the library call behind ``evalkit run``), and its summary."""
    from evalkit.runner import RunConfig, run

    output = Path(tempfile.mkdtemp(prefix="out-", dir=plan.work))
    options.setdefault("use_cache", False)
    config = RunConfig(MODEL, tasks=list(TASKS), data_dirs=(str(plan.data_dir),), output_dir=str(output),
                       device=device, precision=precision, show_progress=False, **options)  # fmt: skip
    summary = run(config, on_task_done=None)
    scores = {w.spec.name: float(w.outcome.splits[0].main_score) for w in summary.written}
    return scores, summary


def scores_section(plan: Plan) -> dict[str, dict[str, float]]:
    """Main scores of each precision on the device against the CPU fp32 ones (bf16/fp16 within 0.002)."""
    plan.say("")
    found = {}
    if plan.reference == "committed":
        reference = committed_reference(REPO, MODEL, TASKS)
        source = "committed CPU fp32 results (full tasks)"
    else:
        reference = run_tasks(plan, "cpu", "fp32")[0]
        source = "CPU fp32 computed now on this host's CPU"
        if plan.device == "cpu":  # a dry run: its fp32 run is the reference itself
            found["fp32"] = reference
    plan.say(f"## Scores against CPU fp32 ({source})")
    plan.say("| precision | " + " | ".join(f"{task} | Δ" for task in TASKS) + " |")
    plan.say("| --- |" + " ---: | ---: |" * len(TASKS))
    for precision in plan.precisions:
        scores = found[precision] if precision in found else run_tasks(plan, plan.device, precision)[0]
        found[precision] = scores
        cells = " | ".join(f"{scores[t]:.5f} | {scores[t] - reference[t]:+.5f}" for t in TASKS)
        plan.say(f"| {precision} | {cells} |")
    plan.say("| cpu fp32 reference | " + " | ".join(f"{reference[t]:.5f} | " for t in TASKS) + " |")
    for precision, scores in found.items():
        worst = max(abs(scores[t] - reference[t]) for t in TASKS)
        plan.check(f"{precision} within {SCORE_TOLERANCE} of CPU fp32", worst <= SCORE_TOLERANCE,
                   f"largest difference {worst:.5f}", counted=not plan.dry)  # fmt: skip
    return found


def cache_section(plan: Plan) -> None:
    """The same run twice with one cache folder: the second reads every vector and gives the same scores."""
    plan.say("")
    plan.say("## Cache on the device")
    precision = plan.precisions[-1]
    cache_dir = str(Path(tempfile.mkdtemp(prefix="cache-", dir=plan.work)))
    cold_s, (cold, cold_summary) = timed(plan.device, partial(run_tasks, plan, plan.device, precision,
                                                              use_cache=True, cache_dir=cache_dir))  # fmt: skip
    warm_s, (warm, warm_summary) = timed(plan.device, partial(run_tasks, plan, plan.device, precision,
                                                              use_cache=True, cache_dir=cache_dir))  # fmt: skip
    cold_stats, warm_stats = cold_summary.embedding_stats, warm_summary.embedding_stats
    plan.say(f"- {precision}, first run {cold_s:.2f} s: {cold_stats}; second run {warm_s:.2f} s: {warm_stats}")
    plan.check("second run encodes nothing", warm_stats.get("encoded") == 0 and warm_stats.get("cached", 0) > 0,
               f"encoded {warm_stats.get('encoded')}, read {warm_stats.get('cached')}")  # fmt: skip
    plan.check("cached scores equal the computed ones", cold == warm, f"{warm}")


class InjectedOutOfMemory:
    """``embed_batch`` that fails as CUDA does on any batch of more than ``rows`` texts (the tests' injection)."""

    def __init__(self, embed_batch: Callable[[list[list[int]]], Any], rows: int) -> None:
        self.embed_batch, self.rows, self.raised = embed_batch, rows, 0

    def __call__(self, token_ids: list[list[int]]) -> Any:
        if len(token_ids) > self.rows:
            self.raised += 1
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB (injected by gpu_check)")
        return self.embed_batch(token_ids)


def oom_section(plan: Plan, texts: list[str]) -> None:
    """The core's back-off: an injected out-of-memory error, and on CUDA a real one under a tiny memory budget."""
    import numpy as np

    plan.say("")
    plan.say("## Out-of-memory back-off")
    encoder = _encoder(plan, "fp32")
    expected = _core(plan).encode(encoder, texts, "document")
    encoder.embed_batch = InjectedOutOfMemory(encoder.embed_batch, rows=8)
    core = _core(plan)
    vectors = core.encode(encoder, texts, "document")
    difference = float(np.abs(vectors - expected).max())
    plan.check("injected out-of-memory: batches halved, vectors kept",
               core.stats["oom_retries"] > 0 and difference <= 1e-5,
               f"{core.stats['oom_retries']} retries, token budget now {core.token_budget}, "
               f"max abs diff {difference:.1e}")  # fmt: skip
    del encoder.embed_batch
    if plan.device.startswith("cuda"):
        _forced_oom(plan, encoder, texts, expected)


def _forced_oom(plan: Plan, encoder: Any, texts: list[str], expected: Any) -> None:
    """A real CUDA out-of-memory: the process's allocator capped at what it holds plus 256 MiB."""
    import numpy as np
    import torch

    total = torch.cuda.get_device_properties(0).total_memory
    limit = torch.cuda.memory_allocated() + 256 * 2**20
    torch.cuda.empty_cache()
    torch.cuda.set_per_process_memory_fraction(min(1.0, limit / total))
    core = _core(plan, token_budget=1 << 20, max_batch_size=4096)
    try:
        vectors = core.encode(encoder, texts, "document")
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
        torch.cuda.empty_cache()
    difference = float(np.abs(vectors - expected).max())
    plan.check("real CUDA out-of-memory under a 256 MiB budget: batches halved, vectors kept",
               core.stats["oom_retries"] > 0 and difference <= 1e-4,
               f"{core.stats['oom_retries']} retries, token budget now {core.token_budget}, "
               f"max abs diff {difference:.1e}")  # fmt: skip


def replicas_section(plan: Plan, texts: list[str]) -> None:
    """Two replicas of the model on one device (``--device cuda:0,cuda:0``) against one, alternated A B A B."""
    import numpy as np

    plan.say("")
    plan.say(f"## Two replicas on one device against one ({len(texts)} documents, median of {ROUNDS} rounds)")
    precision = plan.precisions[-1]
    one_device = "cuda:0" if plan.device.startswith("cuda") else "cpu"
    single = _encoder(plan, precision, one_device)
    double = _encoder(plan, precision, f"{one_device},{one_device}")
    seconds: dict[str, list[float]] = {"one": [], "two": []}
    vectors = {}
    for _ in range(ROUNDS):
        for name, encoder in (("one", single), ("two", double)):
            elapsed, vectors[name] = timed(plan.device, partial(_core(plan).encode, encoder, texts, "document"))
            seconds[name].append(elapsed)
    one, two = statistics.median(seconds["one"]), statistics.median(seconds["two"])
    plan.say(f"- {precision}: one replica {len(texts) / one:,.0f} texts/s, two {len(texts) / two:,.0f} texts/s "
             f"({one / two:.2f}×)")  # fmt: skip
    difference = float(np.abs(vectors["one"] - vectors["two"]).max())
    plan.check("two replicas give the same vectors", difference <= 1e-5, f"max abs diff {difference:.1e}")


SECTIONS = ("scores", "cache", "oom", "replicas")


def run_check(plan: Plan) -> int:
    """Every section in turn; a section that raises is reported as failed and the next one still runs."""
    plan.say(f"# GPU check: {MODEL} on {', '.join(TASKS)}{' (DRY RUN on CPU, tiny slices)' if plan.dry else ''}")
    plan.say("")
    started = time.perf_counter()
    texts = task_texts(plan.data_dir, "SciFact")[: plan.docs]
    peak = machine_section(plan)
    rates = guarded(plan, "throughput", partial(throughput_section, plan, texts, peak)) or {}
    if rates:
        guarded(plan, "tokenization", partial(tokenization_section, plan, texts, rates))
    guarded(plan, "scores", partial(scores_section, plan))
    guarded(plan, "cache", partial(cache_section, plan))
    guarded(plan, "oom", partial(oom_section, plan, texts[: max(64, len(texts) // 4)]))
    guarded(plan, "replicas", partial(replicas_section, plan, texts))
    plan.say("")
    plan.say("## Verdict")
    plan.say(f"- wall time: {time.perf_counter() - started:.1f} s")
    plan.say(f"- failed: {', '.join(plan.failures)}" if plan.failures else "- every counted check passed")
    imported = [name for name in ("mteb", "datasets", "pytrec_eval", "onnxruntime") if name in sys.modules]
    plan.say(f"- optional heavy packages this check imported: {', '.join(imported) or 'none'}")
    return 1 if plan.failures else 0


def guarded(plan: Plan, name: str, section: Callable[[], Any]) -> Any:
    try:
        return section()
    except Exception as err:  # one broken section must not hide the others' figures
        plan.say(f"- {name}: **FAIL** ({type(err).__name__}: {str(err).splitlines()[0][:300] if str(err) else ''})")
        plan.failures.append(name)
        return None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data" / "tasks")
    parser.add_argument("--dry", action="store_true", help="CPU, tiny slices (automatic without CUDA)")
    parser.add_argument("--output", type=Path, help="also write the markdown here")
    parser.add_argument("--cpu-reference", choices=("committed", "compute"), default="committed")
    parser.add_argument("--docs", type=int, help="SciFact documents timed (default: all; dry: 16)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    import torch

    args = parse_args(argv)
    dry = args.dry or not torch.cuda.is_available()
    with tempfile.TemporaryDirectory(prefix="evalkit-gpu-check-") as work:
        data_dir = tiny_mirror(args.data_dir, Path(work) / "mirror") if dry else args.data_dir
        plan = Plan(
            device="cpu" if dry else "cuda",
            dry=dry,
            data_dir=data_dir,
            work=Path(work),
            precisions=("fp32", "bf16") if dry else ("fp32", "bf16", "fp16"),
            docs=args.docs or (16 if dry else None),
            reference="compute" if dry else args.cpu_reference,
        )
        status = run_check(plan)
    if args.output is not None:
        from evalkit.results.atomic import write_text

        write_text(args.output, "\n".join(plan.lines) + "\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
