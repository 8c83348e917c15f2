"""Models shipped as an ONNX graph (no PyTorch weights): a tokenizer, ONNX Runtime, then the pooling.

Unlike ``onnx_runtime.py``, which exports a transformers model we also hold in PyTorch, here the graph *is* the
model (an int8-quantised one, say), so its file's SHA-256 is the weights fingerprint. The graph's outputs decide
the pooling: token embeddings (rank 3) are pooled as the registry says (mean or CLS) and normalised if it says so;
a graph that already outputs one vector per text (rank 2, e.g. ``sentence_embedding``) is only normalised.

Graphs shipped without a tokenizer take it from another registry model (``tokenizer_from``), resolved as
``--model`` is, so a packaged tokenizer works offline.
"""

from __future__ import annotations

import hashlib
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from evalkit.encoders.pooling import NUMPY_POOLING_MODES, normalized_rows, pool
from evalkit.encoders.protocol import TOKEN_DENSE, Capabilities
from evalkit.errors import EvalkitError, UnknownModelError
from evalkit.host import usable_cores
from evalkit.loaders.checksums import file_sha256
from evalkit.registry.models import ModelSpec, resolve_model

_NUMPY_INTS = {"tensor(int64)": np.int64, "tensor(int32)": np.int32}
_NOT_TOKENIZER_SUFFIXES = (".safetensors", ".onnx", ".onnx_data", ".bin", ".pt", ".pth", ".md", ".h5", ".msgpack")
POOLED_OUTPUT_NAMES = ("sentence_embedding", "sentence_embeddings", "embeddings", "text_embeds")
"""Rank-2 outputs that are the sentence vector; a rank-2 ``pooler_output`` (BERT's CLS + tanh head) is not one."""


def _refuse_what_the_graph_path_does_not_apply(spec: ModelSpec) -> None:
    """A shipped graph is pooled here in numpy (cls or mean), right-padded, with no module after the pooling: a
    spec asking for more is refused, never run without it."""
    unapplied = {
        "pooling": spec.pooling not in NUMPY_POOLING_MODES,
        "dense_modules": bool(spec.dense_modules),
        "include_prompt": not spec.include_prompt,
        "truncate_dim": spec.truncate_dim is not None,
        "padding_side": spec.padding_side != "right",
    }
    for field, refused in unapplied.items():
        if refused:
            raise UnknownModelError(
                f"model '{spec.name}': an ONNX model runs here with cls or mean pooling only, right-padded, with "
                f"no module after it; its {field} is not applied",
                field=field,
            )


class OnnxModelEncoder:
    """An ONNX embedding model run by ONNX Runtime on the CPU, in the precision its graph was saved in.

    ``spec.local_path`` is the folder holding the graph (``spec.onnx_file`` inside it); the tokenizer comes from
    that folder or from ``spec.tokenizer_from``.
    """

    capabilities: Capabilities = TOKEN_DENSE

    def __init__(
        self, spec: ModelSpec, *, device: str = "cpu", precision: str = "fp32", threads: int | None = None
    ) -> None:
        if device != "cpu":
            raise EvalkitError(f"ONNX models run on the CPU here, not '{device}'", field="device")
        if precision != "fp32":
            raise EvalkitError(
                "an ONNX model runs in the precision its graph was saved in; use --precision fp32", field="precision"
            )
        if spec.local_path is None or spec.onnx_file is None:
            raise UnknownModelError(f"model '{spec.name}' names no ONNX graph", field="onnx_file")
        _refuse_what_the_graph_path_does_not_apply(spec)
        self.spec = spec
        self.name = spec.name
        self.graph_path = spec.local_path / spec.onnx_file
        if not self.graph_path.is_file():
            raise UnknownModelError(f"model '{spec.name}': no ONNX graph at this path", file=self.graph_path)
        self.tokenizer_path = self._tokenizer_folder()
        from transformers import AutoTokenizer

        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.tokenizer_path, trust_remote_code=False)
        except (OSError, ValueError) as err:
            raise UnknownModelError(
                f"cannot load the tokenizer of '{spec.name}': {str(err).splitlines()[0]}", file=self.tokenizer_path
            ) from None
        self._pad_id = self.tokenizer.pad_token_id or 0
        self._threads = threads or usable_cores()
        self._input_types = {node.name: _NUMPY_INTS.get(node.type, np.int64) for node in self.session.get_inputs()}
        self.output_name, self.pooled_in_graph = self._pick_output()

    @classmethod
    def from_spec(cls, spec: ModelSpec, encoding: Any, *, artifact_dir: Path | None = None) -> OnnxModelEncoder:
        """Built with the run's device and precision (refused unless cpu and fp32: the graph fixes both); the
        graph is ONNX Runtime's whatever ``--runtime`` says, and it is its own artefact."""
        return cls(spec, device=encoding.device, precision=encoding.precision)

    def _tokenizer_folder(self) -> Path:
        if self.spec.tokenizer_from is None:
            assert self.spec.local_path is not None
            return self.spec.local_path
        folder = resolve_model(self.spec.tokenizer_from).local_path
        if folder is None:
            raise UnknownModelError(
                f"model '{self.spec.name}' takes its tokenizer from '{self.spec.tokenizer_from}', which has no files",
                field="tokenizer_from",
            )
        return folder

    @cached_property
    def session(self):
        """The ONNX Runtime session over the graph (CPU, all graph optimisations)."""
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self._threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        try:
            return onnxruntime.InferenceSession(str(self.graph_path), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own exception types for an unreadable graph
            raise UnknownModelError(
                f"ONNX Runtime cannot load this graph: {str(err).splitlines()[0][:200]}", file=self.graph_path
            ) from None

    def _pick_output(self) -> tuple[str, bool]:
        """The token-embedding output (float, rank 3) if the graph has one, else a sentence-vector output (rank 2).

        Exported sentence-transformers graphs may also pass the token ids and mask through as outputs (int64) and
        end in an unnamed pooled vector; pooling the token embeddings here gives that same vector (checked in
        tests/test_onnx_models.py) and keeps the pooling where the registry says it is.
        """
        outputs = [node for node in self.session.get_outputs() if node.type == "tensor(float)"]
        for node in outputs:
            if len(node.shape) == 3:
                return node.name, False
        for node in outputs:
            if len(node.shape) == 2 and node.name in POOLED_OUTPUT_NAMES:
                return node.name, True
        found = ", ".join(f"{node.name} {node.type}{list(node.shape)}" for node in self.session.get_outputs())
        raise UnknownModelError(
            f"the graph has no token-embedding (rank 3) or sentence-embedding output (found: {found})",
            file=self.graph_path,
        )

    def prepare(self, texts: list[str], prompt: str) -> list[str]:
        return [prompt + text for text in texts] if prompt else list(texts)

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        encoded = self.tokenizer(
            texts,
            truncation=True,
            max_length=self.spec.max_length,
            padding=False,
            return_attention_mask=False,
            return_token_type_ids=False,
        )
        return encoded["input_ids"]

    def _feeds(self, token_ids: list[list[int]]) -> tuple[dict[str, np.ndarray], np.ndarray]:
        longest = max(len(ids) for ids in token_ids)
        input_ids = np.full((len(token_ids), longest), self._pad_id, dtype=np.int64)
        attention_mask = np.zeros((len(token_ids), longest), dtype=np.int64)
        for row, ids in enumerate(token_ids):
            input_ids[row, : len(ids)] = ids
            attention_mask[row, : len(ids)] = 1
        available = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "token_type_ids": np.zeros_like(input_ids),
        }
        feeds = {}
        for name, dtype in self._input_types.items():
            if name not in available:
                raise UnknownModelError(
                    f"the graph wants an input '{name}' this adapter cannot give", file=self.graph_path
                )
            feeds[name] = available[name].astype(dtype, copy=False)
        return feeds, attention_mask

    def embed_batch(self, token_ids: list[list[int]]) -> np.ndarray:
        feeds, attention_mask = self._feeds(token_ids)
        (output,) = self.session.run([self.output_name], feeds)
        output = np.asarray(output, dtype=np.float32)
        if self.pooled_in_graph:
            pooled = normalized_rows(output) if self.spec.normalize else output
        else:
            pooled = pool(output, attention_mask, self.spec.pooling, normalize=self.spec.normalize)
        return pooled.astype(np.float32, copy=False)

    @cached_property
    def _weights_sha256(self) -> str:
        return file_sha256(self.graph_path)

    @cached_property
    def _tokenizer_sha256(self) -> str:
        """Every top-level file of the tokenizer's folder but weights and docs: tokenizer.json, its config, special
        tokens, added tokens, vocabularies and merges, and config.json (which can pick the tokenizer class)."""
        files = sorted(
            path
            for path in self.tokenizer_path.iterdir()
            if path.is_file() and not path.name.startswith(".") and path.suffix not in _NOT_TOKENIZER_SUFFIXES
        )
        digest = hashlib.sha256()
        for path in files:
            digest.update(path.name.encode("utf-8", "surrogateescape") + b"\0")
            digest.update(file_sha256(path).encode())
        return digest.hexdigest()

    def fingerprint(self) -> dict[str, object]:
        return {
            "model": self.name,
            "revision": self.spec.revision,
            "weights_sha256": self._weights_sha256,
            "tokenizer_sha256": self._tokenizer_sha256,
            "onnx_output": self.output_name,
            "pooled_in_graph": self.pooled_in_graph,
            "precision": "fp32",
            "runtime": "onnx",
            **self.spec.settings(),
        }
