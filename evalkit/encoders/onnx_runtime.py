"""ONNX Runtime for a transformers encoder's fp32 forward pass on a CPU.

Measured on the dev box (``reports/bench/fp32_paths.md``): ONNX Runtime's own GEMMs run about twice as fast as
torch's MKL ones on an AMD processor, with vectors equal to torch's within fp32 rounding. The graph is exported once
per weights fingerprint, checked against torch on two batch shapes before it is trusted (a traced graph can freeze a
shape-dependent branch), and kept beside the embedding cache so later runs skip the export.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from evalkit.errors import EvalkitError

EXPORT_TOLERANCE = 1e-4  # max abs difference of hidden states on the probe batches; fp32 rounding gives ~1e-6


def onnxruntime_available() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None


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
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


class OnnxForward:
    """The exported forward pass: token ids and mask in, fp32 last hidden state out."""

    def __init__(self, path: Path, uses_token_types: bool, threads: int) -> None:
        self.path = path
        self.uses_token_types = uses_token_types
        self._session = _session(path, threads)

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        (hidden,) = self._session.run(["last_hidden_state"], _feeds(input_ids, attention_mask, self.uses_token_types))
        return torch.from_numpy(hidden)
