"""Where the exported graph may run (ONNX Runtime, OpenVINO), in which precision, and the check a bf16 graph passes
before one of its vectors is kept.

fp32 on a CPU: ONNX Runtime, or OpenVINO pinned to f32, reproduce torch's vectors within 1e-6 (the graph is checked
against torch at export, :mod:`evalkit.encoders.onnx_runtime`). bf16 on a CPU: OpenVINO compiles the same checked
graph with ``INFERENCE_PRECISION_HINT`` bf16; its fused bf16 kernels encoded SciFact documents 1.87x faster than
torch's bf16 path, at min cosine 0.999973 to fp32 (torch bf16: 0.999925; ``reports/bench/bf16_limit.md``). A run
labelled bf16 must be bf16, so OpenVINO bf16 runs only where the CPU has bf16 units (elsewhere OpenVINO would run
f32 or emulate), and only after its vectors matched the fp32 graph's on the run's first texts (:func:`check_bf16`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from evalkit.errors import EvalkitError

GRAPH_RUNTIMES = ("onnx", "openvino")  # runtimes of the exported graph, checked against torch at export
GRAPH_PRECISIONS = {"onnx": ("fp32",), "openvino": ("fp32", "bf16")}
# bf16 keeps 8 bits of mantissa: torch's bf16 path gives min cosine 0.99992 to fp32 on SciFact documents and
# OpenVINO's 0.99997 (reports/bench/bf16_limit.md; 0.99998 on the test documents). 0.9995 leaves 5x torch's own
# bf16 error as margin, while a graph compiled wrongly (a dropped layer norm, a saturated softmax, fp16 overflow)
# lands far below it.
BF16_MIN_COSINE = 0.9995
GUARD_TOKEN_BUDGET = 1024  # padded tokens of the guard's one batch: MiniLM's fp32 + bf16 passes take ~0.3 s here
GUARD_SYNTHETIC = ((4, 256),)  # (rows, tokens) of the guard's batch when the run has prepared no text yet


def refuse_graph_runtime(runtime: str, device: str, precision: str, padding_side: str) -> None:
    """A runtime of the exported graph (ONNX Runtime, OpenVINO) where it is not the checked one: one line."""
    from evalkit.encoders.onnx_runtime import onnxruntime_available, openvino_available, openvino_has_bf16

    if padding_side != "right":
        raise EvalkitError(
            f"--runtime {runtime} is checked on right-padded batches only; this model pads on the left: use "
            "--runtime torch",
            field="runtime",
        )
    if device != "cpu" or precision not in GRAPH_PRECISIONS[runtime]:
        allowed = " or ".join(GRAPH_PRECISIONS[runtime])
        raise EvalkitError(f"--runtime {runtime} runs {allowed} on a CPU only", field="runtime")
    if not onnxruntime_available():  # the export is checked by ONNX Runtime, whichever runtime runs it
        raise EvalkitError(
            f"--runtime {runtime} needs the onnxruntime package (pip install onnxruntime)", field="runtime"
        )
    if runtime == "openvino" and not openvino_available():
        raise EvalkitError(
            "--runtime openvino needs the openvino package (pip install 'evalkit-embed[openvino]')", field="runtime"
        )
    if runtime == "openvino" and precision == "bf16" and not openvino_has_bf16():
        raise EvalkitError(
            "--runtime openvino --precision bf16 needs a CPU with bf16 units (OpenVINO lists no BF16 for this one: it "
            "would run f32 or emulate bf16); use --runtime torch or --precision fp32",
            field="runtime",
        )


def auto_candidates(device: str, precision: str, padding_side: str, openvino_fits: bool) -> tuple[tuple[str, ...], str]:
    """The runtimes ``--runtime auto`` measures for this setting, and, when torch is the only one, why.

    fp32 on a CPU: torch, ONNX Runtime and OpenVINO (where installed); bf16 on a CPU: torch and OpenVINO bf16
    (where installed and the CPU has bf16 units: ONNX Runtime runs fp32 only); anything else: torch.
    """
    from evalkit.encoders.onnx_runtime import onnxruntime_available, openvino_available, openvino_has_bf16

    if device != "cpu":
        return ("torch",), f"the exported graph runs on a CPU here; {device} runs torch"
    if precision not in ("fp32", "bf16"):
        return ("torch",), f"{precision} runs in torch (it is not probed)"
    if padding_side != "right":
        return ("torch",), "the ONNX export is checked on right-padded batches only; this model pads on the left"
    if not onnxruntime_available():
        return ("torch",), "onnxruntime is not installed"
    openvino = openvino_fits and openvino_available()
    if precision == "fp32":
        return (("torch", "onnx", "openvino") if openvino else ("torch", "onnx")), ""
    if not openvino:
        return ("torch",), "bf16 runs in torch (OpenVINO, its other runtime, is not installed or not for this model)"
    if not openvino_has_bf16():
        return ("torch",), "bf16 runs in torch (OpenVINO lists no bf16 units on this CPU)"
    return ("torch", "openvino"), ""


def min_cosine(vectors: np.ndarray, reference: np.ndarray) -> float:
    """The smallest cosine between matching rows (in float64; two zero rows count as equal, one as opposite)."""
    left, right = np.asarray(vectors, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    norms = np.linalg.norm(left, axis=1) * np.linalg.norm(right, axis=1)
    dots = np.einsum("ij,ij->i", left, right)
    both_zero = (np.linalg.norm(left, axis=1) == 0) & (np.linalg.norm(right, axis=1) == 0)
    cosines = np.where(norms > 0, dots / np.where(norms > 0, norms, 1.0), np.where(both_zero, 1.0, -1.0))
    return float(cosines.min()) if len(cosines) else 1.0


def check_bf16(vectors: np.ndarray, reference: np.ndarray, graph: Path) -> float:
    """The min cosine of the bf16 graph's ``vectors`` to the fp32 graph's on the same texts; refused (one line)
    below :data:`BF16_MIN_COSINE`, so a graph that bf16 breaks never writes a vector under a bf16 label."""
    worst = min_cosine(vectors, reference)
    if not worst >= BF16_MIN_COSINE:
        raise EvalkitError(
            f"OpenVINO's bf16 graph gives vectors at cosine {worst:.6f} to the fp32 graph's on the run's first texts "
            f"(below {BF16_MIN_COSINE}); use --runtime torch or --precision fp32",
            file=graph,
            field="runtime",
        )
    return worst
