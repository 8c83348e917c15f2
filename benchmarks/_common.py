"""Helpers the search and metrics benchmarks share: peak memory per step, and what else was running.

Peak memory is read from the kernel, not from tracemalloc, which sees only Python's own allocations and misses
what BLAS, faiss and numpy's large buffers take. ``ru_maxrss`` is the process's high-water mark, so its delta is
only meaningful for the first step that raises it; :class:`PeakMemory` therefore also samples the resident set
every few milliseconds and reports each step's own peak above its starting point.
"""

from __future__ import annotations

import os
import resource
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

_MIB = 1024.0


def _status_kib() -> dict[str, int]:
    """VmRSS, RssAnon (memory the process allocated) and RssFile (mapped file pages) in KiB."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "RssAnon", "RssFile"):
            fields[name] = int(value.split()[0])
    return fields


class PeakMemory:
    """Peak resident memory of one step, above what the process held when it began.

    ``anon_mib`` counts memory the step allocated; ``rss_mib`` adds pages of memory-mapped files it kept mapped
    (page cache the kernel can drop, but which ``top`` shows). ``maxrss_mib`` is the ``ru_maxrss`` delta.
    """

    def __init__(self, interval_s: float = 0.005) -> None:
        self.interval_s = interval_s
        self.rss_mib = self.anon_mib = self.maxrss_mib = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PeakMemory:
        self._start = _status_kib()
        self._peak = dict(self._start)
        self._maxrss_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()
        self._take_sample()
        self.rss_mib = (self._peak["VmRSS"] - self._start["VmRSS"]) / _MIB
        self.anon_mib = (self._peak["RssAnon"] - self._start["RssAnon"]) / _MIB
        self.maxrss_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - self._maxrss_start) / _MIB

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._take_sample()
            time.sleep(self.interval_s)

    def _take_sample(self) -> None:
        for name, value in _status_kib().items():
            self._peak[name] = max(self._peak[name], value)


def _busy_cpu_seconds() -> float:
    """CPU time all processes on the machine have used since boot (user, nice, system, irq, softirq, steal)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(value) for value in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


class OtherCpu:
    """CPU seconds used by everything but this process while the block ran: the share of the machine that other
    work took from the measurement (0 on a quiet machine; up to wall time × cores when it is saturated)."""

    def __enter__(self) -> OtherCpu:
        self._machine, self._own, self._wall = _busy_cpu_seconds(), _own_cpu_seconds(), time.perf_counter()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.wall_s = time.perf_counter() - self._wall
        own = _own_cpu_seconds() - self._own
        self.seconds = max(0.0, _busy_cpu_seconds() - self._machine - own)

    def summary(self) -> str:
        cores = os.cpu_count() or 1
        return (
            f"other processes used {self.seconds:.1f} CPU-seconds during the {self.wall_s:.0f} s of measurements "
            f"({self.seconds / (self.wall_s * cores):.1%} of the machine's {cores} cores)"
        )


def _own_cpu_seconds() -> float:
    """This process's CPU time and its finished children's (a benchmark that times whole ``evalkit`` processes
    runs them as children: their work is the measurement, not other activity)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def other_activity(limit: int = 5) -> str:
    """The load average and the busiest other processes, for the report: on a shared machine they skew timings."""
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    lines = [f"load average (1, 5, 15 min): {load}"]
    try:
        listing = subprocess.run(
            ["top", "-b", "-n", "1", "-c", "-w", "200"], capture_output=True, text=True, check=True
        ).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return lines[0]
    header = next((i for i, line in enumerate(listing) if line.split()[:1] == ["PID"]), None)
    busy = []
    for line in listing[header + 1 :] if header is not None else []:
        fields = line.split(None, 11)
        if len(fields) == 12 and fields[0] != str(os.getpid()) and float(fields[8]) >= 5.0:
            busy.append(f"    pid {fields[0]}, {fields[8]}% CPU: {fields[11][:120]}")
    lines.append("other processes using ≥5% CPU at this moment (top):")
    return "\n".join(lines + (busy[:limit] or ["    none"]))


def activity_section(others: OtherCpu, before: str) -> list[str]:
    """The report's closing section: how much CPU other processes took, and what ran before and after."""
    return [
        "## What else was running",
        "",
        f"Measured from /proc/stat: {others.summary()}.",
        "",
        "Before the run:",
        "",
        "```",
        before,
        "```",
        "",
        "After the run:",
        "",
        "```",
        other_activity(),
        "```",
        "",
    ]


# (rows, in, out, uses per layer): a 4k-token batch through MiniLM's q/k/v/o projections and feed-forward.
MINILM_GEMMS = ((4096, 384, 384, 4), (4096, 384, 1536, 1), (4096, 1536, 384, 1))


def _timed_rate(product: Callable[[], object], flop: int, seconds: float) -> float:
    """GFLOP/s of ``product`` (``flop`` operations a call): three untimed calls, then as many as fit ``seconds``."""
    for _ in range(3):
        product()
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        product()
        count += 1
    return flop * count / (time.perf_counter() - started) / 1e9


def minilm_matmul_rate(dtype: object, seconds: float = 0.7) -> tuple[float, dict[str, float]]:
    """GFLOP/s of each of MiniLM's products in ``dtype`` (``F.linear`` with weights of that dtype, as the model runs
    them, the calling process's torch threads), and of one layer's mix (total work over total time): the yardstick
    an encoder's GFLOP/s is a share of."""
    import torch

    per_shape, total_flops, total_time = {}, 0.0, 0.0
    for rows, inner, cols, uses in MINILM_GEMMS:
        x = torch.randn(rows, inner, dtype=dtype)
        w = torch.randn(cols, inner, dtype=dtype)
        rate = _timed_rate(lambda x=x, w=w: torch.nn.functional.linear(x, w), 2 * rows * inner * cols, seconds)
        per_shape[f"{rows}×{inner}·{inner}×{cols}"] = rate
        total_flops += 2 * rows * inner * cols * uses
        total_time += 2 * rows * inner * cols * uses / rate
    return total_flops / total_time, per_shape


def minilm_matmul_rate_ort(seconds: float = 0.7) -> float | None:
    """fp32 GFLOP/s of MiniLM's products through ONNX Runtime's own GEMM (MLAS), one layer's mix, with the calling
    process's torch thread count; None without onnxruntime. On some hosts MLAS is ~2x torch's fp32 GEMM, so a
    share of torch's rate alone would flatter a runtime that uses MLAS or OpenVINO's kernels."""
    try:
        import numpy as np
        import onnxruntime
        import torch
        from onnx import TensorProto, helper
    except ImportError:
        return None
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    total_flops, total_time = 0.0, 0.0
    for rows, inner, cols, uses in MINILM_GEMMS:
        weight = helper.make_tensor("w", TensorProto.FLOAT, [inner, cols], np.random.randn(inner * cols).tolist())
        graph = helper.make_graph(
            [helper.make_node("MatMul", ["x", "w"], ["y"])],
            "gemm",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [rows, inner])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [rows, cols])],
            initializer=[weight],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        session = onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        feeds = {"x": np.random.randn(rows, inner).astype(np.float32)}
        rate = _timed_rate(lambda s=session, f=feeds: s.run(None, f), 2 * rows * inner * cols, seconds)
        total_flops += 2 * rows * inner * cols * uses
        total_time += 2 * rows * inner * cols * uses / rate
    return total_flops / total_time


MATMUL_KINDS = ("fp32 torch", "fp32 MLAS", "bf16 torch")


def matmul_rates(seconds: float = 0.7) -> dict[str, float | None]:
    """One reading of the host's MiniLM-shaped matmul rates (GFLOP/s) with torch threads = the machine's cores:
    fp32 through torch and through ONNX Runtime's MLAS, bf16 through torch. Whole-run speed-ups are only
    comparable across hosts next to these (issue 17: one VM's bf16 rate was less than half another's)."""
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    return {
        "fp32 torch": minilm_matmul_rate(torch.float32, seconds)[0],
        "fp32 MLAS": minilm_matmul_rate_ort(seconds),
        "bf16 torch": minilm_matmul_rate(torch.bfloat16, seconds)[0],
    }


def matmul_rate_lines(readings: list[tuple[str, dict[str, float | None]]]) -> list[str]:
    """The report's "matmul rates" lines: every reading (labelled by when it was taken) and the best of each kind,
    so a reader sees both the host's ceiling and how much it moved while the benchmark ran."""

    def shown(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.0f}"

    lines = [f"- matmul rates, GFLOP/s on MiniLM's shapes ({os.cpu_count()} torch threads; {', '.join(MATMUL_KINDS)}):"]
    for label, rates in readings:
        lines.append(f"  - {label}: " + ", ".join(f"{kind} {shown(rates.get(kind))}" for kind in MATMUL_KINDS))
    best = {kind: max((r[kind] for _, r in readings if r.get(kind) is not None), default=None) for kind in MATMUL_KINDS}
    lines.append("  - best: " + ", ".join(f"{kind} {shown(value)}" for kind, value in best.items()))
    return lines
