"""ONNX Runtime (and OpenVINO) for a transformers encoder's forward pass on a CPU: fp32, and OpenVINO bf16.

Measured on the dev box (``reports/bench/fp32_paths.md``): ONNX Runtime's own GEMMs run about twice as fast as
torch's MKL ones on an AMD processor, with vectors equal to torch's within fp32 rounding. The graph is exported once
per weights fingerprint, checked against torch on two batch shapes before it is trusted (a traced graph can freeze a
shape-dependent branch), and kept beside the embedding cache so later runs skip the export. Its SHA-256 is recorded
at export (``<graph>.sha256``) and checked on every load: a graph changed or truncated since is removed and exported
again, never run under the faithful key.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import logging
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from evalkit.errors import EvalkitError
from evalkit.loaders.checksums import file_sha256

logger = logging.getLogger(__name__)

EXPORT_TOLERANCE = 1e-4  # max abs difference of hidden states on the probe batches; fp32 rounding gives ~1e-6


def onnxruntime_available() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None


def openvino_available() -> bool:
    """OpenVINO is optional (the ``openvino`` extra): where it is installed, ``--runtime auto`` probes it too."""
    return importlib.util.find_spec("openvino") is not None


@functools.cache
def openvino_has_bf16() -> bool:
    """Whether OpenVINO's CPU plugin lists bf16 units here (``OPTIMIZATION_CAPABILITIES`` holds ``BF16``): without
    them a bf16 hint runs f32 or emulates bf16, and a run labelled bf16 would not be one."""
    if not openvino_available():
        return False
    import openvino

    try:
        capabilities = openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    except Exception:  # openvino raises its own RuntimeError types for a plugin it cannot load
        return False
    return "BF16" in [str(capability).upper() for capability in capabilities]


class _LastHiddenState(torch.nn.Module):
    """Positional inputs in, the last hidden state out: the shape ``torch.onnx.export`` traces."""

    def __init__(self, model: torch.nn.Module, uses_token_types: bool) -> None:
        super().__init__()
        self.model = model
        self.uses_token_types = uses_token_types

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, *rest: torch.Tensor) -> torch.Tensor:
        extra = {"token_type_ids": rest[0]} if self.uses_token_types else {}
        return self.model(input_ids=input_ids, attention_mask=attention_mask, **extra).last_hidden_state


def input_names(uses_token_types: bool) -> list[str]:
    return ["input_ids", "attention_mask"] + (["token_type_ids"] if uses_token_types else [])


def _probe_batches(vocab_size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Two shapes, padding included, so a graph that froze one shape's branch is caught."""
    generator = torch.Generator().manual_seed(0)
    batches = []
    for rows, tokens in ((3, 17), (2, 40)):
        ids = torch.randint(5, min(vocab_size, 1000), (rows, tokens), generator=generator)
        mask = torch.ones_like(ids)
        mask[-1, tokens // 2 :] = 0
        batches.append((ids, mask))
    return batches


def _feeds(ids: torch.Tensor, mask: torch.Tensor, uses_token_types: bool) -> dict[str, np.ndarray]:
    feeds = {"input_ids": ids.numpy(), "attention_mask": mask.numpy()}
    if uses_token_types:
        feeds["token_type_ids"] = np.zeros_like(feeds["input_ids"])
    return feeds


def _session(path: Path, threads: int):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def export_checked(model: torch.nn.Module, uses_token_types: bool, target: Path) -> None:
    """Export ``model`` to ``target`` atomically, only if its outputs match torch's on the probe batches."""
    target.parent.mkdir(parents=True, exist_ok=True)
    wrapped = _LastHiddenState(model, uses_token_types).eval()
    names = input_names(uses_token_types)
    sample = torch.ones((2, 8), dtype=torch.long)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                wrapped,
                tuple([sample] * len(names)),
                str(tmp),
                input_names=names,
                output_names=["last_hidden_state"],
                dynamic_axes={name: {0: "batch", 1: "tokens"} for name in names},
                opset_version=17,
                dynamo=False,
            )
            session = _session(tmp, threads=1)
            for ids, mask in _probe_batches(int(getattr(model.config, "vocab_size", 1000))):
                expected = wrapped(ids, mask, *([torch.zeros_like(ids)] if uses_token_types else [])).numpy()
                (actual,) = session.run(["last_hidden_state"], _feeds(ids, mask, uses_token_types))
                difference = float(np.abs(actual - expected).max())
                if not difference <= EXPORT_TOLERANCE:
                    raise EvalkitError(
                        f"the ONNX export of this model differs from torch by {difference:.1e} on a probe batch "
                        f"of shape {tuple(ids.shape)}; use --runtime torch",
                        field="runtime",
                    )
        _write_checksum(target, file_sha256(tmp))
        os.replace(tmp, target)  # after the checksum: a graph on disk always has one (a stale one fails, safely)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def checksum_path(graph: Path) -> Path:
    return graph.with_name(graph.name + ".sha256")


def _write_checksum(graph: Path, sha256: str) -> None:
    fd, tmp_name = tempfile.mkstemp(prefix=f".{graph.name}.", suffix=".sha256.tmp", dir=graph.parent)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(sha256 + "\n")
        os.replace(tmp_name, checksum_path(graph))
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)


def _discard(graph: Path, reason: str) -> None:
    logger.warning("ONNX graph %s: %s; exporting it again", graph, reason)
    for path in (graph, checksum_path(graph)):
        with contextlib.suppress(FileNotFoundError, IsADirectoryError, PermissionError):
            path.unlink()


def open_verified(graph: Path, uses_token_types: bool, threads: int) -> OnnxForward | None:
    """The graph's forward pass if it matches the checksum recorded at its export; None when there is no graph, or
    it was changed, truncated or cannot be loaded (it is then removed, so the caller exports it again)."""
    if not graph.is_file():
        return None
    try:
        recorded = checksum_path(graph).read_text(encoding="ascii").strip()
        actual = file_sha256(graph)
    except (OSError, UnicodeDecodeError) as err:
        _discard(graph, f"no readable checksum ({type(err).__name__})")
        return None
    if actual != recorded:
        _discard(graph, "its SHA-256 is not the one recorded at export (changed or truncated)")
        return None
    try:
        return OnnxForward(graph, uses_token_types, threads)
    except Exception as err:  # onnxruntime raises its own types for a graph it cannot load
        _discard(graph, f"ONNX Runtime cannot load it ({str(err).splitlines()[0][:120] if str(err) else err!r})")
        return None


class OnnxForward:
    """The exported forward pass: token ids and mask in, fp32 last hidden state out."""

    def __init__(self, path: Path, uses_token_types: bool, threads: int) -> None:
        self.path = path
        self.uses_token_types = uses_token_types
        self._session = _session(path, threads)

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        (hidden,) = self._session.run(["last_hidden_state"], _feeds(input_ids, attention_mask, self.uses_token_types))
        return torch.from_numpy(hidden)


class OpenVinoForward:
    """The exported graph compiled by OpenVINO for the CPU: the same inputs and output as :class:`OnnxForward`.

    ``precision`` fp32 pins OpenVINO to f32 (its default on a CPU with bf16 units is bf16, which is not faithful);
    measured on the dev box, its vectors were within 1.6e-7 of torch's on SciFact documents. ``precision`` bf16 asks
    for bf16 (``--precision bf16``): OpenVINO's fused bf16 kernels, checked by the caller against the fp32 graph
    (:func:`evalkit.encoders.graph_runtime.check_bf16`). Either way the compiled model's own precision is read back
    and a mismatch refused: a run labelled bf16 is bf16, one labelled fp32 is fp32. It is only ever built from a
    graph that passed the export check and its checksum (:func:`open_verified`).
    """

    def __init__(self, path: Path, uses_token_types: bool, threads: int, precision: str = "fp32") -> None:
        import openvino

        hints = {"fp32": openvino.Type.f32, "bf16": openvino.Type.bf16}
        if precision not in hints:
            raise EvalkitError(f"--runtime openvino runs fp32 or bf16, not {precision}", field="precision")
        self.path = path
        self.uses_token_types = uses_token_types
        self.precision = precision
        config = {"INFERENCE_PRECISION_HINT": hints[precision], "INFERENCE_NUM_THREADS": threads}
        self._compiled = openvino.Core().compile_model(str(path), "CPU", config)
        compiled_precision = self._compiled.get_property("INFERENCE_PRECISION_HINT")
        if compiled_precision != hints[precision]:
            raise EvalkitError(
                f"OpenVINO compiled the graph in {compiled_precision.get_type_name()}, not {precision}; use "
                "--runtime torch",
                file=path,
                field="runtime",
            )
        self._names = [port.get_any_name() for port in self._compiled.inputs]

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        feeds = _feeds(input_ids, attention_mask, self.uses_token_types)
        outputs = self._compiled({name: feeds[name] for name in self._names})
        return torch.from_numpy(np.asarray(outputs[0], dtype=np.float32))
