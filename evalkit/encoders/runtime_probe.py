"""``--runtime auto``: the fastest faithful runtime for this model on this host, measured once and remembered.

Which runtime is fastest depends on the host, not on the model alone: ONNX Runtime's GEMMs ran about twice as fast
as torch's on one AMD VM and barely faster on another of the same kind (issue 17). So ``auto`` measures: a short
probe runs each candidate on a few batches of the run's own texts (the first ones it encodes, length-sorted as the
core batches them), alternating the runtimes (A B A B) and taking the median per runtime. Only runtimes whose
vectors are within ``VECTOR_TOLERANCE`` of torch's on those same batches are candidates, so the probe picks a speed,
never a score. bf16 on a CPU probes torch bf16 against OpenVINO bf16 (two bf16 paths round differently, so they are
held to ``BF16_VECTOR_TOLERANCE``; OpenVINO's is also checked against the fp32 graph by cosine before it runs,
:mod:`evalkit.encoders.graph_runtime`); fp16 runs in torch and is not probed.

The choice is remembered in a small JSON file in evalkit's cache folder (``runtime-probe/<key>.json``), keyed by the
host (CPU model, usable cores, library versions), the weights fingerprint and the setting (device, precision): a
new host, new weights or a library upgrade probes again. The file is written atomically; one that cannot be read,
is not the expected shape, or names another host, weights or an unknown runtime is ignored and probed again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from evalkit.host import library_version, usable_cores

logger = logging.getLogger(__name__)

MEMO_FORMAT = 1
MEMO_FOLDER = "runtime-probe"
MEMO_MAX_BYTES = 65536  # a memo is a few hundred bytes; anything larger is not one of ours
VECTOR_TOLERANCE = 1e-6  # max abs difference of a candidate's vectors from torch's on the probe batches
# Two bf16 paths (torch's, OpenVINO's) each differ from fp32 by bf16 rounding (max abs 3.2e-3 and 1.4e-3 on unit
# SciFact vectors, reports/bench/bf16_limit.md), so from each other by up to ~5e-3;
# 1e-2 admits that, not a broken graph.
BF16_VECTOR_TOLERANCE = 1e-2
PROBE_ROUNDS = 2  # A B A B
PROBE_TEXTS = 512  # texts of the run sampled for the probe's batches (the longest of them are used)
PROBE_BATCHES = 2
PROBE_TOKEN_BUDGET = 4096  # padded tokens per probe batch: the CPU core's default budget
LIBRARIES = ("torch", "onnxruntime", "openvino", "transformers", "numpy")

Embed = Callable[[Any], np.ndarray]


@dataclass(frozen=True)
class RuntimeChoice:
    """Which runtime runs the model, and why: ``requested`` (named by the run), ``only candidate`` (one runtime fits
    this device and precision), ``probed`` (measured now; ``seconds`` holds the median per runtime) or
    ``remembered`` (measured by an earlier run on this host with these weights; ``seconds`` are that probe's)."""

    runtime: str
    reason: str
    detail: str = ""
    seconds: Mapping[str, float] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        """Plain JSON data for the run record."""
        record: dict[str, Any] = {"runtime": self.runtime, "reason": self.reason}
        if self.detail:
            record["detail"] = self.detail
        if self.seconds:
            record["probe_median_seconds"] = {name: round(value, 6) for name, value in self.seconds.items()}
        return record


def _cpu_model() -> str:
    with contextlib.suppress(OSError, UnicodeDecodeError):
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def host_key() -> dict[str, str]:
    """What makes one runtime faster than another here: the processor, the cores usable, the libraries' versions
    (read from their metadata: nothing is imported)."""
    host = {"cpu": _cpu_model(), "cores": str(usable_cores()), "machine": platform.machine()}
    host.update({f"version:{name}": library_version(name) for name in LIBRARIES})
    return host


def memo_path(root: Path, host: Mapping[str, str], weights_sha256: str, setting: Mapping[str, str]) -> Path:
    """The memo file of this host, weights and setting under ``root`` (a name evalkit makes, never one it reads)."""
    key = json.dumps({"host": dict(host), "weights": weights_sha256, "setting": dict(setting)}, sort_keys=True)
    return root / MEMO_FOLDER / f"{hashlib.sha256(key.encode('utf-8')).hexdigest()[:40]}.json"


def _expected_memo(host: Mapping[str, str], weights_sha256: str, setting: Mapping[str, str]) -> dict[str, Any]:
    return {"format": MEMO_FORMAT, "host": dict(host), "weights_sha256": weights_sha256, "setting": dict(setting)}


def read_memo(path: Path, expected: Mapping[str, Any], candidates: Sequence[str]) -> RuntimeChoice | None:
    """The remembered choice, or None when the file is missing or is not a memo of this host, weights and setting
    naming one of ``candidates`` with finite timings (any such file is ignored: the caller probes again)."""
    try:
        if not path.is_file() or path.stat().st_size > MEMO_MAX_BYTES:
            return None
        memo = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        logger.info("runtime memo %s is unreadable; probing again", path)
        return None
    if not isinstance(memo, dict) or any(memo.get(name) != value for name, value in expected.items()):
        return None
    runtime, seconds = memo.get("runtime"), memo.get("seconds")
    if runtime not in candidates or not isinstance(seconds, dict) or not seconds:
        return None
    valid = all(
        name in candidates and isinstance(value, float) and math.isfinite(value) and value >= 0
        for name, value in seconds.items()
    )
    if not valid:
        return None
    detail = memo.get("detail") if isinstance(memo.get("detail"), str) else ""
    return RuntimeChoice(runtime, "remembered", detail[:300], dict(seconds))


def write_memo(path: Path, expected: Mapping[str, Any], choice: RuntimeChoice) -> None:
    """Remember ``choice`` atomically (a reader sees the old file or the new one); a folder that cannot be written
    only means the next run probes again."""
    memo = {**expected, "runtime": choice.runtime, "seconds": dict(choice.seconds), "detail": choice.detail}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(memo, handle, indent=1, sort_keys=True)
            os.replace(tmp_name, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
    except OSError as err:
        logger.info("cannot remember the runtime choice in %s (%s); the next run probes again", path, err)


def probe_batches(token_ids: Sequence[Sequence[int]], budget: int = PROBE_TOKEN_BUDGET, count: int = PROBE_BATCHES):
    """The first ``count`` batches the core would make of these texts: longest first, ``rows × longest ≤ budget``
    padded tokens each (:func:`evalkit.core.batching.token_budget_batches`' rule)."""
    ordered = sorted((list(ids) for ids in token_ids if len(ids)), key=len, reverse=True)
    batches, start = [], 0
    while start < len(ordered) and len(batches) < count:
        size = max(1, budget // max(1, len(ordered[start])))
        batches.append(ordered[start : start + size])
        start += size
    return batches


def _faithful(
    candidates: Mapping[str, Embed], batches: Sequence[Any], reference: str, tolerance: float
) -> tuple[list[str], list[str]]:
    """The candidates whose vectors are within ``tolerance`` of the reference's on every batch (this first pass is
    also each runtime's warm-up), and a note per one left out."""
    expected = [np.asarray(candidates[reference](batch)) for batch in batches]
    kept, notes = [reference], []
    for name, embed in candidates.items():
        if name == reference:
            continue
        try:
            worst = max(float(np.abs(np.asarray(embed(b)) - e).max()) for b, e in zip(batches, expected, strict=True))
        except Exception as err:  # an export refused or a runtime that fails: not a candidate, never the run's end
            notes.append(f"{name} left out ({str(err).splitlines()[0][:120] if str(err) else type(err).__name__})")
            continue
        if worst <= tolerance:
            kept.append(name)
        else:
            notes.append(f"{name} left out (vectors differ from {reference}'s by {worst:.1e} > {tolerance:.0e})")
    return kept, notes


def probe(
    candidates: Mapping[str, Embed],
    batches: Sequence[Any],
    *,
    reference: str = "torch",
    tolerance: float = VECTOR_TOLERANCE,
    rounds: int = PROBE_ROUNDS,
    clock: Callable[[], float] = time.perf_counter,
) -> RuntimeChoice:
    """Time every faithful candidate over ``batches``, alternating them (A B A B, ``rounds`` times), and choose the
    one with the smallest median; a tie goes to the reference."""
    kept, notes = _faithful(candidates, batches, reference, tolerance)
    timings: dict[str, list[float]] = {name: [] for name in kept}
    for _ in range(rounds):
        for name in kept:
            start = clock()
            for batch in batches:
                candidates[name](batch)
            timings[name].append(clock() - start)
    seconds = {name: statistics.median(values) for name, values in timings.items()}
    chosen = min(kept, key=lambda name: (seconds[name], name != reference))
    figures = ", ".join(f"{name} {value:.3f} s" for name, value in sorted(seconds.items(), key=lambda kv: kv[1]))
    detail = f"median of {rounds} alternated rounds over {len(batches)} batches: {figures}"
    return RuntimeChoice(chosen, "probed", "; ".join([detail, *notes]), seconds)


def choose_runtime(
    candidates: Mapping[str, Embed],
    sample: Callable[[], Sequence[Any]],
    *,
    memo_root: Path | None,
    host: Mapping[str, str],
    weights_sha256: str,
    setting: Mapping[str, str],
    reference: str = "torch",
    tolerance: float = VECTOR_TOLERANCE,
    clock: Callable[[], float] = time.perf_counter,
) -> RuntimeChoice:
    """The remembered choice for this host, weights and setting, else a probe over ``sample()``'s batches (called
    only when probing), remembered under ``memo_root`` (None: not remembered). ``tolerance``: how far a candidate's
    vectors may be from the reference's (``BF16_VECTOR_TOLERANCE`` for bf16 candidates)."""
    if len(candidates) == 1:
        (only,) = candidates
        return RuntimeChoice(only, "only candidate")
    expected = _expected_memo(host, weights_sha256, setting)
    path = memo_path(memo_root, host, weights_sha256, setting) if memo_root is not None else None
    remembered = read_memo(path, expected, list(candidates)) if path is not None else None
    if remembered is not None:
        return remembered
    choice = probe(candidates, sample(), reference=reference, tolerance=tolerance, clock=clock)
    if path is not None:
        write_memo(path, expected, choice)
    logger.info("runtime %s chosen by probe (%s)", choice.runtime, choice.detail)
    return choice
